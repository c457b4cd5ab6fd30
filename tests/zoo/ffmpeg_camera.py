"""Cameras that are ffmpeg itself, serving the stamped file without re-encoding.

- `http-ts`: `ffmpeg -re -stream_loop -1 -c copy -f mpegts -listen 1 http://...`: one client
  at a time (the listening socket closes while one is served); a new ffmpeg starts when the
  client leaves, so the camera takes the next connection (from the file's start again).
- `rtmp`: ffmpeg publishing FLV to a private nginx-rtmp (`rtmp://127.0.0.1:PORT/live/cam`),
  which any number of readers pull. H.264 only (FLV in ffmpeg 5.1), audio none or AAC.

Frames sent are counted from ffmpeg's own `-progress` output, one file per ffmpeg run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.zoo.processes import Respawner, free_port, listening, spawn, stop, wait_until
from tests.zoo.spec import CameraSpec
from tests.zoo.stamped import stamped_ts

NGINX_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
NGINX_CONF = """
load_module {module};
daemon off;
master_process off;
error_log {root}/nginx-error.log;
pid {root}/nginx.pid;
events {{ worker_connections 64; }}
rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; }} }} }}
"""


def rtmp_available() -> bool:
    return shutil.which("nginx") is not None and NGINX_MODULE.exists()


def _ffmpeg(source: Path, output: list[str], progress: Path) -> list[str]:
    return ["ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i", str(source),
            "-map", "0", "-c", "copy", "-progress", str(progress), "-stats_period", "0.5",
            *output]


def frames_in_progress(path: Path) -> int:
    """The last `frame=` ffmpeg reported in a -progress file (0 if none yet)."""
    try:
        counts = re.findall(r"^frame=(\d+)$", path.read_text(), re.MULTILINE)
    except OSError:
        return 0
    return int(counts[-1]) if counts else 0


class FfmpegCamera:
    """http-ts or rtmp, per the spec's kind; `workdir` holds logs and progress files."""

    def __init__(self, spec: CameraSpec, workdir: Path, port: int | None = None):
        if spec.kind == "rtmp" and (spec.media.codec != "h264" or
                                    spec.media.audio not in ("none", "aac")):
            raise ValueError("the rtmp camera carries H.264 with no audio or AAC (FLV)")
        self.spec = spec
        self.workdir = workdir
        self.port = port or free_port()
        self.source = stamped_ts(spec.media)
        self._runner: Respawner | None = None
        self._nginx: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        if self.spec.kind == "rtmp":
            return f"rtmp://127.0.0.1:{self.port}/live/cam"
        return f"http://127.0.0.1:{self.port}/cam.ts"

    def progress_files(self) -> list[Path]:
        return sorted(self.workdir.glob("progress-*.txt"),
                      key=lambda p: int(p.stem.split("-")[1]))

    def _run(self, number: int) -> subprocess.Popen:
        progress = self.workdir / f"progress-{number}.txt"
        if self.spec.kind == "rtmp":
            output = ["-f", "flv", self.url]
        else:
            output = ["-f", "mpegts", "-listen", "1", self.url]
        return spawn(_ffmpeg(self.source, output, progress), self.workdir / "ffmpeg.log")

    def start(self, timeout: float = 30) -> FfmpegCamera:
        self.workdir.mkdir(parents=True, exist_ok=True)
        first = len(self.progress_files())
        if self.spec.kind == "rtmp":
            self._start_nginx(timeout)
        self._runner = Respawner(lambda n: self._run(first + n))
        if self.spec.kind == "rtmp":  # publishing: ffmpeg reports frames once nginx takes them
            wait_until(lambda: frames_in_progress(self.workdir / f"progress-{first}.txt"),
                       timeout, "the RTMP publisher")
        else:
            wait_until(lambda: listening(self.port), timeout, "ffmpeg's HTTP listener")
        return self

    def _start_nginx(self, timeout: float) -> None:
        conf = self.workdir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(module=NGINX_MODULE, root=self.workdir,
                                          port=self.port))
        self._nginx = spawn(["nginx", "-p", str(self.workdir), "-c", str(conf)],
                            self.workdir / "nginx.log")
        wait_until(lambda: listening(self.port), timeout, "nginx-rtmp")

    @property
    def process(self) -> subprocess.Popen | None:
        return self._runner.process if self._runner else None

    def sent_counts(self) -> list[int]:
        """Frames ffmpeg sent, per run (each run starts at the file's frame 0)."""
        return [frames_in_progress(p) for p in self.progress_files()]

    def stop(self) -> None:
        if self._runner is not None:
            self._runner.stop()
            self._runner = None
        stop(self._nginx)
        self._nginx = None
