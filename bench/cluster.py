"""Cluster failover on this machine (not a test): 3 nodes x 8 cameras on one PostgreSQL.

    .venv/bin/python bench/cluster.py                 # 5 runs, lease 8 s (the default)
    .venv/bin/python bench/cluster.py --runs 1 --lease 2s --steady 5   # a short smoke run

Per run: a fresh database, three `python -m streamwarden run` nodes with the same 24
cameras (recording, 4 s segments), wait until they are spread and recording; measure the
steady state for `--steady` seconds (database transactions per second from
pg_stat_database's xact_commit, each node's CPU from /proc); kill -9 the node with the most
cameras and time until every orphan streams and has a segment open on its new owner; then
footage lost per orphan = the holes in the cluster index's segments around the kill. Once per
benchmark, the same 8 cameras on one node without `[cluster]`: CPU of a node of the cluster
against it is what clustering costs. Writes bench/results/cluster-*.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import cpu_ticks, pct_of_core, write_json
from tests.cluster.nodes import ClusterSetup, Node
from tests.cluster.postgres import Postgres, remove_postgres, start_postgres
from tests.conftest import CameraProcess, free_port

NODES = 3
CAMERA_OPTIONS = ["--width", "640", "--height", "360", "--fps", "25", "--gop", "25"]


def sql(url: str, query: str, params: tuple = ()) -> list[tuple]:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def owners(url: str) -> dict[str, str | None]:
    return {sid: owner if live else None for sid, owner, live in
            sql(url, "SELECT stream_id, owner, expires > now() FROM ownership")}


def recording(node: Node, stream_id: str) -> bool:
    try:
        view = node.get(f"/streams/{stream_id}").json()
    except (httpx.HTTPError, ValueError):
        return False
    segments = sum(c.get("segments") or 0 for c in view["statistics"]["consumers"])
    return view["owner"] == node.node_id and view["health"]["state"] == "streaming" \
        and segments > 0


def all_recording(url: str, nodes: list[Node], ids: list[str]) -> bool:
    by_id = {n.node_id: n for n in nodes if n.alive()}
    now = owners(url)
    return all(now.get(sid) in by_id and recording(by_id[now[sid]], sid) for sid in ids)


def wait(predicate, timeout: float, what: str, interval: float = 0.1) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if predicate():
            return time.monotonic() - began
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout:g}s waiting for {what}")


def holes(url: str, stream_id: str, start: float, end: float) -> float:
    """Seconds of [start, end] that no indexed segment of the cluster covers (a dead node's
    open segment counts up to its last heartbeat: its file plays about that far)."""
    rows = sql(url, "SELECT r.start_ts, COALESCE(r.end_ts, extract(epoch FROM CASE WHEN "
                    "n.expires > now() THEN now() ELSE n.heartbeat END)::float8) "
                    "FROM cluster_recordings r JOIN cluster_nodes n USING (node_id) "
                    "WHERE r.stream_id = %s ORDER BY r.start_ts", (stream_id,))
    lost, covered = 0.0, start
    for seg_start, seg_end in rows:
        if seg_end <= covered:
            continue
        lost += max(0.0, min(seg_start, end) - covered)
        covered = max(covered, seg_end)
        if covered >= end:
            break
    return lost + max(0.0, end - covered)


def node_cpu(nodes: list[Node], seconds: float) -> dict[str, float]:
    before = {n.node_id: cpu_ticks(n.process.pid) for n in nodes if n.process}
    time.sleep(seconds)
    return {n.node_id: pct_of_core(cpu_ticks(n.process.pid) - before[n.node_id], seconds)
            for n in nodes if n.process}


def one_run(pg: Postgres, index: int, cameras: list[tuple[str, str]], args,
            workdir: Path) -> dict:
    db = pg.create_database(f"bench{index}")
    setup = ClusterSetup(db, workdir / f"run{index}", lease=args.lease, segment="4s",
                         cameras=cameras)
    setup.workdir.mkdir(parents=True)
    key = Path(__file__).resolve().parents[1] / "bench" / ".cluster-bench.key"
    (setup.workdir / "cluster.key").write_bytes(key.read_bytes())
    nodes = [Node(f"n{i + 1}", setup).start() for i in range(NODES)]
    ids = [sid for sid, _ in cameras]
    try:
        for node in nodes:
            node.wait_ready(90)
        wait(lambda: all_recording(db, nodes, ids) and len(set(owners(db).values())) == NODES,
             180, "the cameras spread and recording", 0.5)
        commits = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        first = sql(db, commits)[0][0]
        cpu = node_cpu(nodes, args.steady)
        qps = (sql(db, commits)[0][0] - first - 2) / args.steady  # minus our own two reads
        counts = {n: sum(1 for o in owners(db).values() if o == n) for n in cpu}
        victim = max(nodes, key=lambda n: counts[n.node_id])
        orphans = [sid for sid, o in owners(db).items() if o == victim.node_id]
        killed = time.time()
        victim.kill()
        took = wait(lambda: all_recording(db, nodes, orphans), 120, "the orphans recording")
        time.sleep(args.settle)
        lost = {sid: round(holes(db, sid, killed - 5.0, time.time() - 1.0), 2)
                for sid in orphans}
        return {"recovery_s": round(took, 2), "orphans": len(orphans), "lost_s": lost,
                "queries_per_s": round(qps, 1), "cpu_percent": cpu, "cameras": counts}
    finally:
        for node in nodes:
            node.kill()
        pg.drop_database(f"bench{index}")


def baseline_cpu(cameras: list[tuple[str, str]], args, workdir: Path) -> float:
    setup = ClusterSetup("", workdir / "single", segment="4s", cameras=cameras,
                         clustered=False)
    setup.workdir.mkdir(parents=True)
    node = Node("single", setup).start()
    try:
        node.wait_ready(90)
        wait(lambda: all(s["state"] == "streaming" for s in node.get("/health").json()), 60,
             "the single node streaming")
        time.sleep(2.0)
        return node_cpu([node], args.steady)["single"]
    finally:
        node.kill()


def report(runs: list[dict], single: float, per_node: int) -> dict:
    recovery = [r["recovery_s"] for r in runs]
    lost = [v for r in runs for v in r["lost_s"].values()]
    cpu = [v for r in runs for v in r["cpu_percent"].values()]
    summary = {
        "recovery_s": {"min": min(recovery), "median": statistics.median(recovery),
                       "max": max(recovery)},
        "lost_s_per_orphan": {"min": min(lost), "median": statistics.median(lost),
                              "max": max(lost)},
        "queries_per_s": statistics.median(r["queries_per_s"] for r in runs),
        "cpu_percent_cluster_node": round(statistics.mean(cpu), 2),
        "cpu_percent_single_node": round(single, 2),
        "cameras_per_node": per_node,
    }
    summary["extra_cpu_percent_per_node"] = round(
        summary["cpu_percent_cluster_node"] - summary["cpu_percent_single_node"], 2)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cameras", type=int, default=8, help="per node")
    parser.add_argument("--lease", default="8s")
    parser.add_argument("--steady", type=float, default=20.0, help="seconds measured")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds after recovery before footage is counted")
    args = parser.parse_args()
    from cryptography.fernet import Fernet

    key = Path(__file__).resolve().parent / ".cluster-bench.key"
    key.write_bytes(Fernet.generate_key())
    key.chmod(0o600)
    total = NODES * args.cameras
    camera = CameraProcess(free_port(), [f"/c{i}" for i in range(total)], CAMERA_OPTIONS)
    pg = start_postgres(free_port())
    try:
        camera.start(timeout=180)
        cameras = [(f"c{i}", camera.url(f"/c{i}")) for i in range(total)]
        with tempfile.TemporaryDirectory(prefix="streamwarden-bench-cluster-") as tmp:
            workdir = Path(tmp)
            runs = []
            for i in range(args.runs):
                runs.append(one_run(pg, i, cameras, args, workdir))
                print(f"run {i + 1}: {runs[-1]}", flush=True)
            single = baseline_cpu(cameras[:args.cameras], args, workdir)
    finally:
        camera.kill()
        remove_postgres(pg)
        key.unlink(missing_ok=True)
    summary = report(runs, single, args.cameras)
    for name, value in summary.items():
        print(f"{name:32} {value}")
    path = write_json("cluster", {"args": vars(args), "runs": runs, "summary": summary})
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
