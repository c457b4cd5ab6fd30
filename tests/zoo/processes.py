"""Child processes of zoo cameras: started in their own session, ended by their own id.

Small helpers shared by the camera kinds: a free loopback port, waiting for a port to be
listening without connecting to it (an ffmpeg `-listen 1` server would take that connection
as its one client), and a supervisor that starts a command again whenever it exits (ffmpeg
serving HTTP ends with its client; a real camera takes the next one).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    """Whether some socket listens on 127.0.0.1:`port` (read from /proc, no connection)."""
    wanted = f"0100007F:{port:04X}"
    with contextlib.suppress(OSError), open("/proc/net/tcp") as table:
        return any(line.split()[1] == wanted and line.split()[3] == "0A"
                   for line in table.readlines()[1:])
    return False


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def spawn(args: list[str], log: Path, **kwargs) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(args, stdout=kwargs.pop("stdout", out), stderr=out,
                                stdin=kwargs.pop("stdin", subprocess.DEVNULL),
                                start_new_session=True, **kwargs)


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGCONT)  # a stalled (stopped) process must die too
            process.kill()
        process.wait(10)


class Respawner:
    """Runs `make()` (which returns a started process) again each time that process exits."""

    def __init__(self, make: Callable[[int], subprocess.Popen]):
        self._make = make
        self._stopped = threading.Event()
        self.runs = 0
        self.process = make(0)
        self._thread = threading.Thread(target=self._watch, name="zoo-respawn", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopped.is_set():
            if self.process.poll() is None:
                time.sleep(0.1)
                continue
            if not self._stopped.is_set():
                self.runs += 1
                self.process = self._make(self.runs)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(5)
        stop(self.process)
