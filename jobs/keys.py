"""Every Redis key the service uses is built here. Celery's own keys are named here only where
the service reads them: a queue's list (the metrics count its messages) and the two keys where
kombu keeps delivered but unacknowledged messages (recovery reads them)."""

from __future__ import annotations

import hashlib

PREFIX = "xmlconv"


def job(job_id: str) -> str:
    """Hash: the job record (see jobs/store.py for its fields)."""
    return f"{PREFIX}:job:{job_id}"


def tombstone(job_id: str) -> str:
    """String (the job's owner): outlives the job record so that an expired id answers 410 to
    its owner, not 404."""
    return f"{PREFIX}:gone:{job_id}"


def idempotency(owner: str, client_key: str) -> str:
    """String: the job id created for an owner's Idempotency-Key (hashed: keys are free text;
    scoped per owner: two clients may use the same key)."""
    digest = hashlib.sha256(f"{owner}\0{client_key}".encode()).hexdigest()
    return f"{PREFIX}:idem:{digest}"


def running_jobs() -> str:
    """Sorted set: ids of running jobs, scored by their last sign of life (progress of the run,
    or the heartbeat of the worker running it)."""
    return f"{PREFIX}:running"


def active_jobs() -> str:
    """Sorted set: ids of every client's unfinished (queued or running) jobs, scored by creation
    time; beside `running_jobs` it tells the metrics how many are queued."""
    return f"{PREFIX}:active"


def job_figures() -> str:
    """Hash: the job figures GET /metrics reports, counted where jobs are submitted and finish
    (jobs/figures.py): one field per counter or histogram bucket, labels joined by `|`."""
    return f"{PREFIX}:metrics:jobs"


def unpublished_jobs() -> str:
    """Sorted set: ids of queued jobs whose Celery message may not be with the broker yet,
    scored by when it was due."""
    return f"{PREFIX}:unpublished"


def worker_heartbeats() -> str:
    """Sorted set: worker hostnames scored by the time their heartbeat lapses."""
    return f"{PREFIX}:workers"


def worker_info(hostname: str) -> str:
    """String (JSON): what a live worker says about itself; expires with its heartbeat."""
    return f"{PREFIX}:worker:{hostname}"


def beat_heartbeat() -> str:
    """String (JSON): celery beat's last sign of life; expires when it stops ticking."""
    return f"{PREFIX}:beat"


def api_key_names() -> str:
    """Hash: API key name → key id (names are unique)."""
    return f"{PREFIX}:clients"


def api_key(key_id: str) -> str:
    """String (JSON): one API key's client: name, limits, the sha256 of its secret
    (jobs/api_keys.py)."""
    return f"{PREFIX}:client:{key_id}"


def owner_jobs(owner: str) -> str:
    """Sorted set: a client's job ids scored by creation time (GET /jobs lists from it)."""
    return f"{PREFIX}:owner:{owner}:jobs"


def owner_active(owner: str) -> str:
    """Sorted set: a client's unfinished (queued or running) job ids (its MAX_ACTIVE_JOBS)."""
    return f"{PREFIX}:owner:{owner}:active"


def owner_uploads(owner: str) -> str:
    """Sorted set: a client's uploads in flight (their job ids to be), scored by when each
    reservation lapses unless refreshed; counted beside `owner_active` (its MAX_ACTIVE_JOBS)."""
    return f"{PREFIX}:owner:{owner}:uploads"


def owner_active_prefix() -> str:
    """owner_active(owner) is this + owner + ":active"; the Lua scripts build it from the job's
    `owner` field (a job's final transition does not know its owner beforehand)."""
    return f"{PREFIX}:owner:"


def direct_upload(upload_id: str) -> str:
    """Hash: a direct upload (POST /uploads) until it becomes its job or lapses: its owner, the
    object store's multipart upload id, the announced size, when its URLs expire
    (jobs/direct_uploads.py)."""
    return f"{PREFIX}:upload:{upload_id}"


def rate_limits() -> str:
    """Prefix of the rate limiter's request counters, one a client (api/limits.py)."""
    return f"{PREFIX}:limits"


def broker_queue(queue: str) -> str:
    """List (kombu's): the messages waiting in a Celery queue; kombu names it after the queue."""
    return queue


def broker_unacked() -> str:
    """Hash (kombu's): delivery tag → a message delivered to a worker and not yet acknowledged.
    Set as the Redis transport's `unacked_key` (jobs/queue.py); kombu's default name."""
    return "unacked"


def broker_unacked_index() -> str:
    """Sorted set (kombu's): delivery tag → when it was delivered (`unacked_index_key`)."""
    return "unacked_index"


def webhook_slots(owner: str) -> str:
    """Sorted set: one client's webhook deliveries in progress (a token each), scored by when
    the lease lapses in Unix ms (jobs/webhook_slots.py: at most WEBHOOK_MAX_PER_KEY)."""
    return f"{PREFIX}:webhooks:{owner or 'anonymous'}"


def events_prefix() -> str:
    """Pub/sub channels (not keys): `events_prefix() + job id` carries each change of that job's
    record, the whole record as JSON, published by the store's scripts (jobs/events.py)."""
    return f"{PREFIX}:events:"


def events(job_id: str) -> str:
    """The pub/sub channel of one job's changes."""
    return events_prefix() + job_id
