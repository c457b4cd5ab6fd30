"""The container image, built and run as CI's fresh machine would: no registry, no daemon.

Debian's debootstrap makes a Debian 12 root file system from Debian's packages, `podman
import` turns it into the base image, `buildah bud --isolation chroot` builds the Dockerfile
on it (its `FROM` takes the base as a build argument), and `buildah run --isolation chroot`
runs the service in the result on the host's network, where a real camera on 127.0.0.1
feeds it and the test asks `/health/ready` from outside.

The debootstrap tarball is cached in ~/.cache/streamwarden/debootstrap (and the base image in
podman's storage), so a developer's second run skips that step; the image itself is rebuilt
every run, since the recipe is what is tested. Marked `image`: `pytest -m "not image"` skips
it locally; CI runs it. Behind a TLS-inspecting proxy (a CA in /usr/local/share/ca-certificates)
that directory is lent to the build so pip trusts the proxy; nothing of it stays in a real image.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, free_port, wait_for

TOOLS = ("debootstrap", "podman", "buildah")
pytestmark = [
    pytest.mark.image,
    pytest.mark.timeout(900),
    pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                       reason="debootstrap, podman and buildah are needed (scripts/setup.sh)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="debootstrap and buildah's chroot need root"),
]

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "streamwarden"
ROOTFS_TARBALL = CACHE / "debootstrap" / "bookworm-minbase.tar"
BASE_IMAGE = "localhost/streamwarden-base:bookworm"
IMAGE = "localhost/streamwarden-test:latest"
MIRROR = "http://deb.debian.org/debian"
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
TOKEN = "image-test-token-0123456789"


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args[:4])}…: {result.stderr[-3000:]}"
    return result


def base_image() -> str:
    """Debian 12 minbase as an image: from podman's storage, the cached tarball, or made."""
    if subprocess.run(["podman", "image", "exists", BASE_IMAGE]).returncode == 0:
        return BASE_IMAGE
    if not ROOTFS_TARBALL.is_file():
        ROOTFS_TARBALL.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="sw-rootfs-") as rootfs:
            run("debootstrap", "--variant=minbase", "bookworm", rootfs, MIRROR)
            partial = ROOTFS_TARBALL.with_suffix(".partial")
            run("tar", "-C", rootfs, "-cf", str(partial), ".")
            partial.replace(ROOTFS_TARBALL)  # a cache never holds half a tarball
    run("podman", "import", str(ROOTFS_TARBALL), BASE_IMAGE)
    return BASE_IMAGE


def build(base: str) -> None:
    args = ["buildah", "bud", "--isolation", "chroot", "--format", "docker", "--layers=false",
            "--build-arg", f"BASE={base}", "-t", IMAGE, "-f", str(REPO / "Dockerfile")]
    if LOCAL_CAS.is_dir() and any(LOCAL_CAS.glob("*.crt")):
        args += ["-v", f"{LOCAL_CAS}:{LOCAL_CAS}:ro"]
    run(*args, str(REPO), timeout=840)


def write_config(directory: Path, api_port: int, camera_url: str) -> Path:
    directory.mkdir(mode=0o755)
    config = directory / "streamwarden.toml"
    config.write_text(
        '[app]\ndatabase = "/data/streamwarden.db"\n'
        f'[api]\nlisten = "127.0.0.1:{api_port}"\n'
        '[recording]\nbase_path = "/recordings"\n'
        f'[restream]\nlisten = "127.0.0.1:{free_port()}"\n'
        f'[[streams]]\nid = "cam"\nuri = "{camera_url}"\nenable_recording = true\n')
    config.chmod(0o644)
    return config


def service_pid(root: int) -> int:
    """The service under `buildah run` (→ chroot helpers → `streamwarden`): by its name."""
    queue = [root]
    while queue:
        pid = queue.pop(0)
        if Path(f"/proc/{pid}/comm").read_text().strip() == "streamwarden":
            return pid
        for task in Path(f"/proc/{pid}/task").iterdir():  # Go forks from any of its threads
            queue += [int(c) for c in (task / "children").read_text().split()]
    raise AssertionError("no streamwarden process under buildah run")


def test_image_builds_and_serves_a_camera(camera_factory, tmp_path):
    started = time.monotonic()
    build(base_image())
    built = time.monotonic() - started
    container = run("buildah", "from", "--pull-never", IMAGE).stdout.strip()
    service = None
    try:
        meta = run("buildah", "inspect", "--format",
                   "{{.Docker.Config.User}}|{{.Docker.Config.Healthcheck.Test}}|"
                   "{{.Docker.Config.Volumes}}", container).stdout.strip()
        user, healthcheck, volumes = meta.split("|")
        assert user == "streamwarden"
        assert "streamwarden health --ready" in healthcheck
        assert all(v in volumes for v in ("/config", "/data", "/recordings"))

        camera = camera_factory(["/cam"])
        port = free_port()
        config = write_config(tmp_path / "conf", port, camera.url())
        log = (tmp_path / "service.log").open("w")
        service = subprocess.Popen(
            ["buildah", "run", "--isolation", "chroot", "-v", f"{config.parent}:/test:ro",
             "-e", f"STREAMWARDEN_API_TOKEN={TOKEN}", container, "--",
             "streamwarden", "run", "--config", "/test/streamwarden.toml"],
            stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/health/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return service.poll() is not None  # stop waiting: it died
        wait_for(ready, 90, interval=0.5, message="/health/ready from the image")
        assert service.poll() is None, (tmp_path / "service.log").read_text()[-3000:]
        client = httpx.Client(base_url=base, timeout=10,
                              headers={"Authorization": f"Bearer {TOKEN}"})
        wait_for(lambda: client.get("/streams/cam").json()["recording"], 20,
                 message="the camera streaming and recording inside the image")
        # the image's own HEALTHCHECK command, run inside it
        run("buildah", "run", "--isolation", "chroot", container, "--",
            "streamwarden", "health", "--ready", "--url", base, timeout=30)
        os.kill(service_pid(service.pid), signal.SIGTERM)
        exit_code = service.wait(20)
        output = (tmp_path / "service.log").read_text()
        assert exit_code == 0 and "streamwarden stopped" in output, output[-3000:]
        print(f"image test: built in {built:.0f} s, total {time.monotonic() - started:.0f} s")
    finally:
        if service is not None and service.poll() is None:
            service.kill()
            service.wait(10)
        subprocess.run(["buildah", "rm", container], capture_output=True)
        subprocess.run(["buildah", "rmi", "-f", IMAGE], capture_output=True)
