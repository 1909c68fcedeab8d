"""Every Redis key the service uses is built here (Celery's own broker keys aside)."""

from __future__ import annotations

import hashlib

PREFIX = "xmlconv"


def job(job_id: str) -> str:
    """Hash: the job record (see common/jobs.py for its fields)."""
    return f"{PREFIX}:job:{job_id}"


def tombstone(job_id: str) -> str:
    """String: outlives the job record so that an expired id answers 410, not 404."""
    return f"{PREFIX}:gone:{job_id}"


def idempotency(client_key: str) -> str:
    """String: the job id created for a client's Idempotency-Key (hashed: keys are free text)."""
    digest = hashlib.sha256(client_key.encode("utf-8")).hexdigest()
    return f"{PREFIX}:idem:{digest}"


def running_jobs() -> str:
    """Sorted set: ids of running jobs, scored by their last sign of life (progress of the run,
    or the heartbeat of the worker running it)."""
    return f"{PREFIX}:running"


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
