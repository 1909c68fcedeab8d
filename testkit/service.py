"""One process of a stack: its output appended to a log file, started (and started again) on
demand, ready when its check says so, stopped with SIGTERM and then SIGKILL for its session."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from testkit import REPO
from testkit.waiting import wait_until


class Service:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path, *,
                 ready: Callable[[Service], object] | None = None, cwd: Path = REPO) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log = log
        self.cwd = cwd
        self.ready_check = ready or (lambda _: True)
        self.popen: subprocess.Popen | None = None
        self.log_offset = 0
        self.starts = 0
        # Once closed, nothing starts it again (a benchmark's fault thread may be restarting it).
        self._closing = threading.Lock()
        self._closed = False

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    def start(self) -> None:
        with self._closing:
            if self._closed:
                raise RuntimeError(f"not starting {self.name}: it was closed")
            self.log.parent.mkdir(parents=True, exist_ok=True)
            self.log_offset = self.log.stat().st_size if self.log.exists() else 0
            with open(self.log, "ab") as out:  # the child keeps its own descriptor
                self.popen = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=out,
                                              stderr=subprocess.STDOUT, start_new_session=True)
            self.starts += 1

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, timeout: float = 60) -> None:
        if not wait_until(lambda: self.ready_check(self) or not self.alive(), timeout):
            raise RuntimeError(f"{self.name} did not become ready in {timeout}s")
        if not self.alive():
            tail = "\n".join(self.new_output().splitlines()[-20:])
            raise RuntimeError(f"{self.name} exited at start:\n{tail}")

    def lines(self) -> list[str]:
        """Every line of its log, all its runs."""
        # "\n" only: a log line is a record; str.splitlines() would also split at U+2028.
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return text.rstrip("\n").split("\n") if text else []

    def new_output(self) -> str:
        """What the process wrote since it was last started."""
        with open(self.log, "rb") as handle:
            handle.seek(self.log_offset)
            return handle.read().decode("utf-8", "replace")

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def kill_all(self) -> None:
        """SIGKILL the process and everything in its session (a worker's pool children)."""
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)

    def wait_exit(self, timeout: float) -> bool:
        if self.popen is None:
            return True
        try:
            self.popen.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            self.signal(signal.SIGTERM)
            if not self.wait_exit(timeout):
                self.kill_all()
                self.wait_exit(10)
        self.kill_all()  # leftovers of a process killed alone (pool children)

    def close(self) -> None:
        """Stop for good."""
        with self._closing:
            self._closed = True
        self.stop()


def vm_hwm_kib(pid: int) -> int:
    """Peak resident memory of a process so far (Linux), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")


class ServiceGroup:
    """Processes started together and stopped together, last started first: `with group:`
    starts them (stopping what did start if one fails) and stops them all at the end."""

    def services(self) -> list[Service]:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        for service in reversed(self.services()):
            with contextlib.suppress(Exception):
                service.close()

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
