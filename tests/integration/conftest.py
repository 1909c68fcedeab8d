"""The real stack for integration tests: redis-server, a Celery worker process, the API under
gunicorn, and Flower — each a subprocess with its stdout captured to a file that the tests
read (every line must be JSON)."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import requests
from servicekit import MAX_UPLOAD, RedisServer, free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

sys.path.insert(0, str(REPO / "bench"))


class Process:
    """A subprocess whose output goes to a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with open(log, "ab") as out:  # the child keeps its own descriptor
            self.popen = subprocess.Popen(argv, env=env, cwd=REPO, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8", errors="replace").splitlines()

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


@dataclass
class Stack:
    redis: RedisServer
    data_dir: Path
    api_url: str
    flower_url: str
    env: dict[str, str]
    api: Process
    worker: Process
    flower: Process
    logs: dict[str, Process] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.api_url + path

    def job_dirs(self) -> list[str]:
        jobs = self.data_dir / "jobs"
        return sorted(p.name for p in jobs.iterdir()) if jobs.is_dir() else []

    def api_worker_pid(self) -> int:
        children = psutil.Process(self.api.pid).children()
        assert children, "gunicorn has no worker process"
        return children[0].pid

    def get_job(self, job_id: str) -> dict:
        response = requests.get(self.url(f"/jobs/{job_id}"), timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_finished(self, job_id: str, timeout: float = 60) -> dict:
        return wait_for(lambda: (job := self.get_job(job_id))["status"] in (
            "succeeded", "failed", "cancelled") and job, timeout,
            f"job {job_id} did not finish", interval=0.1)


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
