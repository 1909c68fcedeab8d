"""ONE way to build a running service for a test or a benchmark: a few options, and Stack
starts what they name on free loopback ports, each process a Service logging to
<root>/logs/<name>.log:

    Stack(root, redis=redis_server)                         # the API, a worker and a webhooks
                                                            # worker, a fresh db
    Stack(root, redis=redis_server, workers=0, keys=True)   # the API alone, API keys on
    Stack(root, redis=redis_server, s3=s3_server)           # STORAGE_URL=s3://…, no shared dir
    Stack(root, workers=2, beat=True, redis_args=(…))       # its own redis-server (benchmarks)
    Stack(root, failover=ha)                                # every process (and client())
                                                            # finds the primary through the
                                                            # Sentinels of a testkit Failover

The environment is service_env()'s with `env` on top (an empty value: the setting's default).
`with Stack(...) as stack:` starts everything and waits until each process is ready; on the way
out every process is stopped for good (a shared redis-server is not the stack's to stop)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from pathlib import Path

import psutil
import redis
import requests

from jobs import keys as redis_keys
from testkit import BIN, REPO, commands
from testkit.jobs_api import JobsApi
from testkit.redis_server import RedisServer
from testkit.s3_server import S3Server
from testkit.sentinel import Failover
from testkit.service import Service, ServiceGroup
from testkit.waiting import free_port, wait_for

HOST = "127.0.0.1"
LOOPBACK = {"http": "", "https": ""}  # no proxy from the environment between us and the stack


class Stack(JobsApi, ServiceGroup):
    _client: redis.Redis | None = None  # client(), made on first use

    def __init__(self, root: Path, *, redis: RedisServer | None = None, workers: int = 1,
                 api: bool = True, beat: bool = False, flower: bool = False, keys: bool = False,
                 webhooks: bool | None = None,
                 s3: S3Server | None = None, name: str = "stack",
                 redis_args: tuple[str, ...] = (), env: dict[str, str] | None = None,
                 failover: Failover | None = None) -> None:
        self.root = root
        self.name = name
        self.s3 = s3
        self.failover = failover
        self.own_redis = redis is None and failover is None
        self.redis = failover.primary if failover else redis or RedisServer(root / "redis",
                                                                            *redis_args)
        self.database = self.redis.database()
        self.data_dir = root / "data"
        self.logs_dir = root / "logs"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        settings = {"AUTH_MODE": "api_key"} if keys else {}
        if failover is not None:  # REDIS_URL's host is not used: only its database
            settings.update(failover.env(), REDIS_URL=f"redis:///{self.database.index}")
        if s3 is not None:
            # Each process gets its own working and data directory: they share only the bucket.
            self.prefix = f"{name}-{uuid.uuid4().hex[:8]}"
            settings.update(STORAGE_URL=f"s3://{S3Server.BUCKET}/{self.prefix}", **s3.settings())
        self.env = commands.service_env(self.database.url, self.data_dir,
                                        **settings, **(env or {}))
        self.workers = [self._worker(n) for n in range(1, workers + 1)]
        # The webhooks worker (its own queue and threads), by default beside any worker.
        self.webhooks = self._service(
            "webhooks", commands.webhooks_worker(f"webhooks-{self.name}@%h"),
            lambda service: "ready." in service.new_output()) if (
            workers > 0 if webhooks is None else webhooks) else None
        self.beat = self._service(
            "beat", commands.celery_beat(root / "beat-schedule"),
            lambda _: self.client().exists(redis_keys.beat_heartbeat())) if beat else None
        self.flower = self.flower_url = None
        if flower:
            port = free_port()
            self.flower_url = f"http://{HOST}:{port}"
            self.flower = self._service("flower", commands.flower(), lambda _: requests.get(
                self.flower_url + "/healthcheck", timeout=2, proxies=LOOPBACK).ok,
                FLOWER_PORT=str(port))
        self.api = self.api_port = None
        if api:
            self.api, self.api_port = self._api("api")
            self.api_url = f"http://{HOST}:{self.api_port}"

    def _service(self, name: str, argv: list[str], ready, **env: str) -> Service:
        environ, cwd = {**self.env, **env}, REPO
        if self.s3 is not None:
            environ["DATA_DIR"] = str(self.root / name / "data")
            cwd = self.root / name / "cwd"
            cwd.mkdir(parents=True, exist_ok=True)
        return Service(name, argv, environ, self.logs_dir / f"{name}.log", ready=ready, cwd=cwd)

    def _worker(self, n: int, **env: str) -> Service:
        # Its Celery node name: the service's name, then the stack's (worker-1-chaos@host).
        return self._service(f"worker-{n}", commands.celery_worker(self._node(n) + "%h"),
                             lambda service: "ready." in service.new_output(), **env)

    def _node(self, n: int) -> str:
        return f"worker-{n}-{self.name}@"

    def _api(self, name: str, **env: str) -> tuple[Service, int]:
        port = free_port()
        service = self._service(name, commands.gunicorn(), lambda _: requests.get(
            f"http://{HOST}:{port}/health", timeout=2, proxies=LOOPBACK).ok,
            API_BIND=f"{HOST}:{port}", **env)
        return service, port

    # -- running

    def processes(self) -> list[Service]:
        """The service's own processes: workers, the webhooks worker, beat, the API, Flower."""
        return [s for s in (*self.workers, self.webhooks, self.beat, self.api, self.flower)
                if s is not None]

    def services(self) -> list[Service]:
        """Every process the stack started, its own redis-server first."""
        return [self.redis, *self.processes()] if self.own_redis else self.processes()

    def start(self) -> None:
        if self.own_redis:
            self.redis.start()
            self.redis.wait_ready(15)
        for service in self.processes():
            service.start()
        for service in self.processes():
            service.wait_ready(90)

    def add_worker(self, **env: str) -> Service:
        """One more worker, started and ready (`env`: its settings beside the stack's)."""
        worker = self._worker(len(self.workers) + 1, **env)
        self.workers.append(worker)
        worker.start()
        worker.wait_ready(90)
        return worker

    @contextlib.contextmanager
    def another_api(self, name: str, **env: str):
        """Another API replica on the same database, for the `with` block: its URL."""
        service, port = self._api(name, **env)
        try:
            service.start()
            service.wait_ready(90)
            yield f"http://{HOST}:{port}"
        finally:
            service.close()

    # -- looking inside

    @property
    def worker(self) -> Service:
        return self.workers[0]

    def worker_by_host(self, hostname: str | None) -> Service | None:
        """The worker whose Celery node name is `hostname` (as job records name it)."""
        for n, worker in enumerate(self.workers, 1):
            if hostname and hostname.startswith(self._node(n)):
                return worker
        return None

    def client(self) -> redis.Redis:
        """The stack's Redis database (short timeouts: a benchmark reads it while Redis
        restarts)."""
        if self._client is None:
            options = {"socket_timeout": 3, "socket_connect_timeout": 1}
            self._client = (self.failover.master(self.database.index, **options) if self.failover
                            else self.database.client(**options))
        return self._client

    def job_dirs(self) -> list[str]:
        jobs = self.data_dir / "jobs"
        return sorted(p.name for p in jobs.iterdir()) if jobs.is_dir() else []

    def local_files(self) -> list[Path]:
        """Every file in the processes' data and working directories."""
        folders = [self.data_dir, *(self.root / p.name for p in self.processes())]
        return [p for folder in folders if folder.is_dir() for p in folder.rglob("*")
                if p.is_file()]

    def objects(self, job_id: str) -> list[str]:
        """An S3 stack's objects of a job in the bucket, and its unfinished multipart uploads."""
        assert self.s3 is not None, "not an S3 stack"
        prefix = f"{self.prefix}/jobs/{job_id}/"
        client = self.s3.client()
        answer = client.list_objects_v2(Bucket=S3Server.BUCKET, Prefix=prefix)
        names = [item["Key"][len(prefix):] for item in answer.get("Contents", [])]
        uploads = client.list_multipart_uploads(Bucket=S3Server.BUCKET, Prefix=prefix)
        return sorted(names + [f"pending:{u['Key']}" for u in uploads.get("Uploads", [])])

    def api_worker_pid(self) -> int:
        """The pid of the API's (first) gunicorn worker process."""
        return wait_for(lambda: psutil.Process(self.api.pid).children(), 30,
                        "gunicorn has no worker process")[0].pid

    # -- API keys (keys=True)

    def admin(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "xmlconv-admin"), *argv], env=self.env, cwd=REPO,
                              capture_output=True, text=True, timeout=60)

    def key(self, name: str, *options: str) -> dict:
        """`xmlconv-admin keys create NAME OPTIONS…`: its JSON, with `headers` to use the key."""
        made = self.admin("keys", "create", name, *options)
        assert made.returncode == 0, made.stderr
        key = json.loads(made.stdout)
        key["headers"] = {"Authorization": f"Bearer {key['api_key']}"}
        return key

