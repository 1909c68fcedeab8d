"""The job figures that only Redis sees whole, recorded where jobs are submitted and finish and
read whole when GET /metrics is scraped (api/metrics.py turns them into Prometheus metrics).

Workers run on other hosts than the API, so what they count goes to Redis, into one hash
(`keys.job_figures()`): a submitted job is one HINCRBY, a finished one a single MULTI of a few
(its counter, and for a success one bucket and the sum of each histogram). The hash
outlives every process: these counters only grow, across restarts, for as long as Redis keeps
its data. The rest is read from what the service keeps anyway: unfinished jobs
(`active_jobs`, `running_jobs`), the Celery queues' lists, and the workers' heartbeats.

Fields, labels joined by `|` (formats, statuses and error codes never contain one):

    submitted|<format>                          jobs accepted
    finished|<format>|<status>|<error code>     jobs finished ("" as the code of a success)
    duration|<format>|<le> and |sum             seconds a successful run took
    input_bytes|<format>|<le> and |sum          input bytes a successful run converted

A histogram's bucket field counts observations up to `le` and above the bucket before it (not
cumulative: one increment per observation); `snapshot()` accumulates them, and the +Inf total
is the count.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field

import redis

from . import keys, workers
from .queue import QUEUE, WEBHOOK_QUEUE
from .status import JobStatus
from .store import Job

# Upper bounds: from a small file's fraction of a second to the 30-minute time limit; from a few
# KiB to the 300 MiB upload limit.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800)
BYTES_BUCKETS = (2**14, 2**17, 2**20, 2**22, 2**24, 2**26, 2**27, 2**28, 300 * 2**20)
QUEUES = (QUEUE, WEBHOOK_QUEUE)
INF = "+Inf"


def _bucket(bounds: tuple[float, ...], value: float) -> str:
    index = bisect.bisect_left(bounds, value)
    return repr(float(bounds[index])) if index < len(bounds) else INF


def record_submitted(client: redis.Redis, fmt: str) -> None:
    client.hincrby(keys.job_figures(), f"submitted|{fmt}", 1)


def record_finished(client: redis.Redis, job: Job, status: str, error_code: str | None,
                    now: float | None = None) -> None:
    """One finished job: its counter, and for a success its run's duration and input size."""
    figures = keys.job_figures()
    with client.pipeline(transaction=True) as pipe:
        pipe.hincrby(figures, f"finished|{job.format}|{status}|{error_code or ''}", 1)
        if status == JobStatus.SUCCEEDED and job.started_at is not None:
            seconds = max(0.0, (time.time() if now is None else now) - job.started_at)
            for name, bounds, value in (("duration", DURATION_BUCKETS, seconds),
                                        ("input_bytes", BYTES_BUCKETS, job.input_size)):
                prefix = f"{name}|{job.format}"
                pipe.hincrby(figures, f"{prefix}|{_bucket(bounds, value)}", 1)
                pipe.hincrbyfloat(figures, f"{prefix}|sum", value)
        pipe.execute()


@dataclass
class Histogram:
    """Cumulative buckets [(upper bound, observations ≤ it)], ending with +Inf = count."""

    buckets: list[tuple[str, int]]
    sum: float


@dataclass
class Snapshot:
    submitted: dict[str, int] = field(default_factory=dict)  # format → jobs
    # (format, status, error code) → jobs
    finished: dict[tuple[str, str, str], int] = field(default_factory=dict)
    duration: dict[str, Histogram] = field(default_factory=dict)  # format → seconds
    input_bytes: dict[str, Histogram] = field(default_factory=dict)  # format → bytes
    queued: int = 0
    running: int = 0
    queue_messages: dict[str, int] = field(default_factory=dict)  # Celery queue → waiting
    unacked_messages: int = 0  # received by a worker, not yet acknowledged
    workers: int = 0
    worker_processes: int = 0  # the live workers' concurrency, added up


def _histograms(raw: dict[str, dict[str, str]], bounds: tuple[float, ...]) -> dict[str, Histogram]:
    found = {}
    for fmt, values in raw.items():
        total, buckets = 0, []
        for bound in (*(repr(float(b)) for b in bounds), INF):
            total += int(values.get(bound, 0))
            buckets.append((bound, total))
        found[fmt] = Histogram(buckets, float(values.get("sum", 0)))
    return found


def snapshot(client: redis.Redis) -> Snapshot:
    """Everything GET /metrics reports from Redis, in two round trips (three with workers)."""
    with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.job_figures())
        pipe.zcard(keys.active_jobs())
        pipe.zcard(keys.running_jobs())
        for queue in QUEUES:
            pipe.llen(keys.broker_queue(queue))
        pipe.hlen(keys.broker_unacked())
        figures, active, running, *lengths, unacked = pipe.execute()
    found = Snapshot(running=running, queued=max(0, active - running),
                     queue_messages=dict(zip(QUEUES, lengths, strict=True)),
                     unacked_messages=unacked)
    histograms: dict[str, dict[str, dict[str, str]]] = {"duration": {}, "input_bytes": {}}
    for name, value in figures.items():
        kind, _, labels = name.partition("|")
        if kind == "submitted":
            found.submitted[labels] = int(value)
        elif kind == "finished":
            fmt, status, code = labels.split("|")
            found.finished[(fmt, status, code)] = int(value)
        elif kind in histograms:
            fmt, _, bucket = labels.partition("|")
            histograms[kind].setdefault(fmt, {})[bucket] = value
    found.duration = _histograms(histograms["duration"], DURATION_BUCKETS)
    found.input_bytes = _histograms(histograms["input_bytes"], BYTES_BUCKETS)
    live = workers.live_workers(client)
    found.workers = len(live)
    found.worker_processes = sum(int(w.get("concurrency") or 0) for w in live)
    return found


class JobFigures:
    """The job figures' one door: what the lifecycle records, and what GET /metrics reads."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def submitted(self, fmt: str) -> None:
        record_submitted(self._redis, fmt)

    def finished(self, job: Job, status: str, error_code: str | None) -> None:
        record_finished(self._redis, job, status, error_code)

    def snapshot(self) -> Snapshot:
        return snapshot(self._redis)
