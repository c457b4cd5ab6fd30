"""Any node answers; what needs the camera or its files is redirected (307) to the node that
has it, or refused (503) while that node is down. Changes to the camera list from any node."""

from __future__ import annotations

import httpx
import pytest

from tests.cluster.conftest import settled, wait_until

pytestmark = pytest.mark.cluster


def test_redirects_to_the_owner_and_503_when_it_is_down(cluster):
    c = cluster(cameras_n=2)
    n1, n2 = c.node("n1", capacity=1), c.node("n2", capacity=1)  # nobody can take over
    n1.wait_ready()
    n2.wait_ready()
    owners = settled(c, 2)
    on_n2 = next(sid for sid, o in owners.items() if o == "n2")
    # a request that needs the camera, asked of the other node: 307 to the owner (once n1's
    # view of the nodes has n2 up: its first refresh can lag the ownership rows on a busy box)
    wait_until(lambda: n1.get(f"/streams/{on_n2}/snapshot.jpg?x=1").status_code == 307, 10,
               "n1 redirecting to n2")
    answer = n1.get(f"/streams/{on_n2}/snapshot.jpg?x=1")
    assert answer.status_code == 307
    assert answer.headers["location"] == f"{n2.url}/streams/{on_n2}/snapshot.jpg?x=1"
    assert answer.json()["error"] == "moved_to_owner"
    followed = httpx.get(f"{n1.url}/streams/{on_n2}/snapshot.jpg", follow_redirects=True,
                         timeout=15)
    assert followed.status_code == 200
    assert followed.headers["content-type"] == "image/jpeg"
    # a recording held by n2, asked of n1 (ids are the cluster index's)
    wait_until(lambda: c.sql("SELECT 1 FROM cluster_recordings WHERE node_id = 'n2' "
                             "AND status = 'complete' AND bytes > 0"), 30, "a closed segment")
    rec_id = c.sql("SELECT id FROM cluster_recordings WHERE node_id = 'n2' "
                   "AND status = 'complete' AND bytes > 0 ORDER BY id LIMIT 1")[0][0]
    listed = {r["id"]: r for r in n1.get(f"/recordings?stream_id={on_n2}").json()}
    assert listed[rec_id]["node"] == "n2"
    assert n1.get(f"/recordings/{rec_id}/file").status_code == 307
    data = httpx.get(f"{n1.url}/recordings/{rec_id}/file", follow_redirects=True, timeout=15)
    assert data.status_code == 200 and len(data.content) > 1000
    # the owner dies; n1 is full, so the camera stays without a live owner: 503
    n2.kill()
    wait_until(lambda: c.live_owners()[on_n2] is None, 10, "n2's lease ending")
    wait_until(lambda: n1.get(f"/streams/{on_n2}/record").status_code == 503, 5,
               "503 for the orphaned camera")
    refused = n1.get(f"/streams/{on_n2}/record")
    assert refused.json()["error"] == "owner_unavailable"
    gone = n1.get(f"/recordings/{rec_id}/file")
    assert gone.status_code == 503 and gone.json()["error"] == "owner_unavailable"
    # and the cluster-wide reads still answer, the camera shown without an owner
    view = n1.get(f"/streams/{on_n2}").json()
    assert view["owner"] is None and view["health"]["state"] == "stopped"
    nodes = {n["node_id"]: n["status"] for n in n1.get("/cluster").json()["nodes"]}
    assert nodes == {"n1": "up", "n2": "down"}


def test_camera_list_changes_from_any_node(cluster):
    c = cluster(cameras_n=1)
    n1, n2 = c.node("n1"), c.node("n2")
    n1.wait_ready()
    n2.wait_ready()
    uri = c.setup.cameras[0][1]
    created = httpx.post(f"{n1.url}/streams", json={"id": "extra", "uri": uri}, timeout=10)
    assert created.status_code == 201
    dup = httpx.post(f"{n2.url}/streams", json={"id": "extra", "uri": uri}, timeout=10)
    assert dup.status_code == 409 and dup.json()["error"] == "duplicate_id"
    wait_until(lambda: c.live_owners().get("extra"), 20, "a node taking the new camera")
    wait_until(lambda: n2.get("/streams/extra").json()["health"]["state"] == "streaming", 20,
               "the new camera streaming, seen from n2")
    patched = httpx.patch(f"{n2.url}/streams/extra", json={"enable_recording": True},
                          timeout=10)
    assert patched.status_code == 200 and patched.json()["enable_recording"] is True
    owner = next(n for n in c.nodes if n.node_id == c.live_owners()["extra"])
    wait_until(lambda: owner.get("/streams/extra").json()["recording"], 15,
               "the owner recording after a PATCH on another node")
    # zones from any node, in the cluster's list: a later change does not undo them
    other = next(n for n in (n1, n2) if n is not owner)
    zones = {"zones": [{"name": "door", "points": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.6]]}],
             "masks": []}
    put = httpx.put(f"{other.url}/streams/extra/zones", json=zones, timeout=10)
    assert put.status_code == 200 and put.json() == zones
    bad = httpx.put(f"{other.url}/streams/extra/zones", json={"zones": [{"name": "x", "points":
                    [[0.1, 0.1], [0.2, 0.2]]}], "masks": []}, timeout=10)
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"
    assert httpx.patch(f"{n1.url}/streams/extra", json={"enable_inference": False},
                       timeout=10).status_code == 200
    for node in (n1, n2):
        assert node.get("/streams/extra/zones").json() == zones, node.node_id
    assert n1.get("/streams/nothing/zones").status_code == 404
    assert httpx.delete(f"{n2.url}/streams/extra", timeout=10).status_code == 204
    wait_until(lambda: "extra" not in owner.get("/cluster").json()["running"], 10,
               "the owner stopping the deleted camera")
    assert n1.get("/streams/extra").status_code == 404
    # the dashboard, from any node, loads the owner column's script
    assert '/static/cluster.js' in n2.get("/").text
    assert n2.get("/static/cluster.js").status_code == 200
    bad = httpx.post(f"{n1.url}/streams", json={"id": "x y", "uri": uri}, timeout=10)
    assert bad.status_code == 422 and set(bad.json()) == {"error", "detail"}
