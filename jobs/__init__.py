"""Jobs: a job's whole life, its record, its files and its messages, behind one door.

The API and the worker import this package and nothing inside it (import-linter's contracts in
pyproject.toml say so): `open_service()` builds the door from settings, `Lifecycle` and `Run`
are a job's verbs, and each other Redis-backed concern has verbs of its own — `ApiKeys` (who a
request is from), `RateLimiter`, `JobFigures` (GET /metrics), `Workers` (heartbeats) and
`WebhookSlots` (deliveries of one client at once).

    store.py      the job record and its transitions (one Lua script each)
    status.py     JobStatus and the typed answer of each transition
    lifecycle.py  Lifecycle and Run: what happens to a job's record and files together
    reservation.py an upload's quota slot, held from before its body is read
    direct_uploads.py what the API remembers of an upload a client puts into the bucket itself
    events.py     JobEvents: a job's changes as they happen (one subscription per process)
    keys.py       every Redis key name
    queue.py      the Celery side: task names, queues, the broker's settings
    storage*.py   the files: a Protocol and two backends (a local directory, an S3 bucket)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import Celery

from common.settings import Settings

from .api_keys import ApiKeys, NewKey, Tenant
from .connection import StoreUnavailable, connect
from .events import CLIENT_NAME as EVENTS_CLIENT_NAME
from .events import CLOSING, GONE, JobEvents, Watch
from .figures import JobFigures, Snapshot
from .lifecycle import (
    RETRY_AFTER_SECONDS,
    JobCancelled,
    Lifecycle,
    OpenedUpload,
    Run,
    RunSuperseded,
    Submission,
    queue_unavailable,
)
from .queue import (
    CONVERT_TASK,
    QUEUE,
    REQUEST_ID_HEADER,
    SWEEP_TASK,
    WEBHOOK_QUEUE,
    WEBHOOK_TASK,
    make_celery,
    publish,
    publish_webhook,
)
from .rate_limits import Count, RateLimiter
from .resource import job_resource, upload_resource
from .status import JobStatus
from .storage import Storage, open_storage
from .store import Job, JobStore, NewJob, is_job_id, new_job_id
from .webhook_slots import WebhookSlots
from .workers import Workers

__all__ = [
    "CONVERT_TASK", "QUEUE", "REQUEST_ID_HEADER", "RETRY_AFTER_SECONDS", "SWEEP_TASK",
    "WEBHOOK_QUEUE", "WEBHOOK_TASK", "WebhookSlots", "publish_webhook",
    "CLOSING", "GONE", "JobEvents", "Watch",
    "ApiKeys", "Count", "Job", "JobCancelled", "JobFigures", "JobService", "JobStatus",
    "Lifecycle", "NewJob", "NewKey", "OpenedUpload", "RateLimiter", "Run", "RunSuperseded",
    "Snapshot", "Storage", "StoreUnavailable", "Submission", "Tenant", "Workers", "is_job_id",
    "job_resource", "make_celery", "new_job_id", "open_service", "open_workers",
    "queue_unavailable", "upload_resource",
]


WEBHOOK_LEASE_MARGIN_SECONDS = 20


@dataclass(frozen=True)
class JobService:
    """Everything Redis-backed a process uses, over one connection pool."""

    lifecycle: Lifecycle
    api_keys: ApiKeys
    rate_limiter: RateLimiter
    figures: JobFigures
    workers: Workers
    webhook_slots: WebhookSlots
    events: JobEvents

    def readiness(self) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """Each check ({"redis": {"ok": …}, "storage": {"ok": …}}, a failed one with its
        error's name, never a message that could carry a path or an address) and the live
        workers (reported, never a failed check)."""
        checks: dict[str, dict[str, Any]] = {}
        live: list[dict[str, Any]] = []
        try:
            self.lifecycle.ping()
            checks["redis"] = {"ok": True}
            live = self.workers.live()
        except StoreUnavailable as exc:
            checks["redis"] = {"ok": False, "error": type(exc).__name__}
        checks["storage"] = self.lifecycle.storage_check()
        return checks, live


def open_service(settings: Settings, celery: Celery) -> JobService:
    """The one way the API and the worker build the door: Redis, storage and the queue."""
    client = connect(settings)
    figures = JobFigures(client)
    store = JobStore(client, result_ttl_seconds=settings.result_ttl_seconds,
                     tombstone_ttl_seconds=settings.tombstone_ttl_seconds,
                     min_replicas=settings.redis_min_replicas,
                     replica_timeout_ms=settings.redis_replica_timeout_ms)
    lifecycle = Lifecycle(
        store,
        open_storage(settings),
        figures,
        lambda job_id, dispatch, request_id: publish(celery, job_id, dispatch, request_id),
        lambda job_id: publish_webhook(celery, job_id),
        max_attempts=settings.job_max_attempts,
        stall_seconds=settings.job_stall_seconds,
        delete_input_on_finish=settings.delete_input_on_finish,
        reservation_seconds=settings.upload_reservation_seconds,
        upload_url_ttl_seconds=settings.upload_url_ttl_seconds,
    )
    # A lease outlasts the attempt's deadline and the name's resolution before it.
    slots = WebhookSlots(client, settings.webhook_max_per_key,
                         settings.webhook_attempt_timeout + WEBHOOK_LEASE_MARGIN_SECONDS)
    # Its own connection (named in CLIENT LIST), made only when a process first watches a job.
    events = JobEvents(connect(settings, client_name=EVENTS_CLIENT_NAME), store)
    return JobService(lifecycle, ApiKeys(client, settings.secret_key), RateLimiter(client),
                      figures, Workers(client), slots, events)


def open_workers(settings: Settings) -> Workers:
    """Heartbeats alone (the worker's bootstep, beat, the probes): no queue, no storage."""
    return Workers(connect(settings))
