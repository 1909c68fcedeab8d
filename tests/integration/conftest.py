"""The real stack for integration tests: redis-server, a Celery worker process, the API under
gunicorn, and Flower — each a subprocess with its stdout captured to a file that the tests
read (every line must be JSON)."""

from __future__ import annotations

import contextlib
import gzip
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import requests
from servicekit import (
    BIN,
    REPO,
    Process,
    RedisServer,
    S3Server,
    free_port,
    service_env,
    start_worker,
    wait_for,
)

sys.path.insert(0, str(REPO / "bench"))


class JobsApi:
    """What a test does with a stack's API (AUTH_MODE=none): its URLs, a job, a job's end."""

    api_url: str

    def url(self, path: str) -> str:
        return self.api_url + path

    def get_job(self, job_id: str) -> dict:
        response = requests.get(self.url(f"/jobs/{job_id}"), timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_finished(self, job_id: str, timeout: float = 60) -> dict:
        return wait_for(lambda: (job := self.get_job(job_id))["status"] in (
            "succeeded", "failed", "cancelled") and job, timeout,
            f"job {job_id} did not finish", interval=0.1)


@dataclass
class Stack(JobsApi):
    redis: RedisServer
    data_dir: Path
    api_url: str
    flower_url: str
    env: dict[str, str]
    api: Process
    worker: Process
    flower: Process
    logs: dict[str, Process] = field(default_factory=dict)

    def job_dirs(self) -> list[str]:
        jobs = self.data_dir / "jobs"
        return sorted(p.name for p in jobs.iterdir()) if jobs.is_dir() else []

    def api_worker_pid(self) -> int:
        children = psutil.Process(self.api.pid).children()
        assert children, "gunicorn has no worker process"
        return children[0].pid


@pytest.fixture(scope="session")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("stack")
    data_dir = root / "data"
    api_port, flower_port = free_port(), free_port()
    env = service_env(redis_server.url(0), data_dir, API_BIND=f"127.0.0.1:{api_port}",
                      FLOWER_PORT=str(flower_port), FLOWER_BASIC_AUTH="admin:secret")
    processes: list[Process] = []
    try:
        worker = start_worker(env, root / "worker.log")
        processes.append(worker)
        api = Process("api", [str(BIN / "gunicorn"), "-c", "gunicorn_config.py",
                              "api:create_app()"], env, root / "api.log")
        processes.append(api)
        flower = Process("flower", [sys.executable, "-m", "worker.flower"], env,
                         root / "flower.log")
        processes.append(flower)
        api_url = f"http://127.0.0.1:{api_port}"
        flower_url = f"http://127.0.0.1:{flower_port}"
        wait_for(lambda: requests.get(api_url + "/health", timeout=2).ok, 60,
                 "the API did not start")
        wait_for(lambda: requests.get(flower_url + "/healthcheck", timeout=2).ok, 60,
                 "Flower did not start")
        yield Stack(redis_server, data_dir, api_url, flower_url, env, api, worker, flower,
                    {"api": api, "worker": worker, "flower": flower})
    finally:
        for process in reversed(processes):
            process.stop()


@dataclass
class KeyedStack:
    """A stack with AUTH_MODE=api_key (its own Redis database, API and worker): clients are
    made with `key(name, ...)`; webhooks may reach loopback receivers."""

    root: Path
    env: dict[str, str]
    api_url: str
    api: Process
    worker: Process

    def url(self, path: str) -> str:
        return self.api_url + path

    def key(self, name: str, *options: str) -> dict:
        """`xmlconv-admin keys create NAME OPTIONS…`: its JSON, with `headers` to use the key."""
        made = subprocess.run([str(BIN / "xmlconv-admin"), "keys", "create", name, *options],
                              env=self.env, cwd=REPO, capture_output=True, text=True,
                              timeout=60)
        assert made.returncode == 0, made.stderr
        key = json.loads(made.stdout)
        key["headers"] = {"Authorization": f"Bearer {key['api_key']}"}
        return key

    def admin(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "xmlconv-admin"), *argv], env=self.env, cwd=REPO,
                              capture_output=True, text=True, timeout=60)

    def wait_finished(self, job_id: str, headers: dict, timeout: float = 60) -> dict:
        return wait_for(lambda: (job := requests.get(
            self.url(f"/jobs/{job_id}"), headers=headers, timeout=10).json())["status"] in (
            "succeeded", "failed", "cancelled") and job, timeout,
            f"job {job_id} did not finish", interval=0.1)


@pytest.fixture(scope="session")
def keyed_stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("keyed")
    port = free_port()
    redis_server.client(4).flushdb()
    env = service_env(redis_server.url(4), root / "data", API_BIND=f"127.0.0.1:{port}",
                      AUTH_MODE="api_key", WEBHOOK_ALLOW_PRIVATE="true",
                      WEBHOOK_RETRY_SCHEDULE="1,1,1", RATE_LIMIT_PER_MINUTE="1000",
                      MAX_ACTIVE_JOBS="50")
    worker = start_worker(env, root / "worker.log", name="keyed")
    api = Process("api", [str(BIN / "gunicorn"), "-c", "gunicorn_config.py",
                          "api:create_app()"], env, root / "api.log")
    try:
        api_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(api_url + "/health", timeout=2).ok, 60,
                 "the API did not start")
        yield KeyedStack(root, env, api_url, api, worker)
    finally:
        api.stop()
        worker.stop()


@dataclass
class S3Stack(JobsApi):
    api_url: str
    api: Process
    worker: Process
    client: object
    bucket: str
    prefix: str
    dirs: tuple[Path, Path]

    def objects(self, job_id: str) -> list[str]:
        prefix = f"{self.prefix}/jobs/{job_id}/"
        answer = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        names = [item["Key"][len(prefix):] for item in answer.get("Contents", [])]
        uploads = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix)
        return sorted(names + [f"pending:{u['Key']}" for u in uploads.get("Uploads", [])])

    def local_files(self) -> list[Path]:
        return [p for d in self.dirs for p in d.rglob("*") if p.is_file()]


@contextlib.contextmanager
def running_s3_stack(redis_server, s3_server: S3Server, root: Path, db: int,
                     **extra: str) -> Iterator[S3Stack]:
    """STORAGE_URL=s3://…: the API and one worker, each in its own working directory with its
    own empty DATA_DIR, sharing nothing but Redis database `db` and the bucket."""
    prefix = f"stack-{uuid.uuid4().hex[:8]}"
    redis_server.client(db).flushdb()
    port = free_port()
    common = {"STORAGE_URL": f"s3://{S3Server.BUCKET}/{prefix}", **s3_server.env(),
              "API_BIND": f"127.0.0.1:{port}", **extra}
    dirs = []
    for name in ("api", "worker"):
        (root / name / "cwd").mkdir(parents=True)
        (root / name / "data").mkdir()
        dirs.append(root / name)
    api_env = service_env(redis_server.url(db), root / "api" / "data", **common)
    worker_env = service_env(redis_server.url(db), root / "worker" / "data", **common)
    worker = Process("worker", [str(BIN / "celery"), "--quiet", "-A", "worker.app", "worker",
                                "-n", f"s3-{uuid.uuid4().hex[:6]}@%h", "--without-gossip"],
                     worker_env, root / "worker.log", cwd=root / "worker" / "cwd")
    api = Process("api", [str(BIN / "gunicorn"), "-c", str(REPO / "gunicorn_config.py"),
                          "api:create_app()"], api_env, root / "api.log",
                  cwd=root / "api" / "cwd")
    try:
        wait_for(lambda: any("ready." in line for line in worker.lines()) or not worker.alive(),
                 60, "the worker did not start")
        assert worker.alive(), "\n".join(worker.lines()[-20:])
        api_url = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(api_url + "/health", timeout=2).ok, 60,
                 "the API did not start")
        yield S3Stack(api_url, api, worker, s3_server.client(), S3Server.BUCKET, prefix,
                      (root / "api", root / "worker"))
    finally:
        api.stop()
        worker.stop()


@pytest.fixture(scope="session")
def s3_stack(redis_server, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory):
    with running_s3_stack(redis_server, s3_server, tmp_path_factory.mktemp("s3stack"),
                          10) as stack:
        yield stack


@pytest.fixture
def make_s3_stack(redis_server, s3_server: S3Server, tmp_path: Path):
    """`with make_s3_stack(db, SETTING=value…) as stack:` an S3 stack of the test's own."""
    return lambda db, **extra: running_s3_stack(redis_server, s3_server, tmp_path, db, **extra)


# -- input files


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small and large inputs made once per session."""
    from generate import generate

    root = tmp_path_factory.mktemp("samples")
    small = root / "orders.xml"
    generate(0.25, small)
    big = root / "big.xml"
    generate(64, big)
    gz = root / "orders.xml.gz"
    gz.write_bytes(gzip.compress(small.read_bytes()))
    malformed = root / "broken.xml"
    malformed.write_bytes(b"<root>\n  <a>one</a>\n  <b>two</a>\n</root>\n")
    laughs = root / "laughs.xml"
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    laughs.write_text('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n' + "\n".join(entities) +
                      "\n]>\n<lolz>&lol9;</lolz>\n")
    return {"small": small, "big": big, "gz": gz, "malformed": malformed, "laughs": laughs}


@pytest.fixture(scope="session")
def cli_output(tmp_path_factory: pytest.TempPathFactory):
    """What `xmlconv convert` writes for a file and format (cached)."""
    root = tmp_path_factory.mktemp("cli")
    cache: dict[tuple, bytes] = {}

    def run(source: Path, fmt: str, *options: str) -> bytes:
        key = (source, fmt, options)
        if key not in cache:
            out = root / f"{len(cache)}.{fmt}"
            subprocess.run([str(BIN / "xmlconv"), "convert", str(source), "-o", str(out),
                            "--to", fmt, *options], check=True, cwd=REPO)
            cache[key] = out.read_bytes()
        return cache[key]

    return run
