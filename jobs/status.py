"""The vocabulary of a job's life as types: its status, and what each transition answers.

The Lua scripts of the job store (jobs/store.py) answer in short words; the store turns each
answer into one of these at once, so no caller compares a string.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class JobStatus(enum.StrEnum):
    """Where a job is in its life (the job resource's `status`)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class Creation(enum.Enum):
    """What recording a new job did."""

    CREATED = "created"
    REPLAYED = "replayed"  # its Idempotency-Key named an earlier job of the same owner
    QUOTA_FULL = "quota_full"  # the owner already has max_active unfinished jobs


@dataclass(frozen=True)
class Created:
    outcome: Creation
    job_id: str | None  # the new job's id, the earlier job's (REPLAYED), or None (QUOTA_FULL)


class Claim(enum.Enum):
    """What a worker's claim of a job from its message found."""

    STARTED = "started"  # it was queued: this run owns it now
    RESTARTED = "restarted"  # it was running (its message came again): this run replaces that one
    STALE = "stale"  # the message was of an older dispatch: another message queues the job
    EXHAUSTED = "exhausted"  # claimed max_attempts times already: the job was failed instead
    FINISHED = "finished"  # it had finished (or been cancelled) already
    GONE = "gone"  # no such job (expired)

    @property
    def owns(self) -> bool:
        return self in (Claim.STARTED, Claim.RESTARTED)


class Ownership(enum.Enum):
    """What a run learns when it reports progress or its outcome."""

    OWNED = "owned"  # the job is still this run's (for an outcome: it was recorded)
    CANCELLED = "cancelled"  # the client cancelled the job
    SUPERSEDED = "superseded"  # another run owns it, or it finished some other way
    GONE = "gone"  # the record expired


class Requeue(enum.Enum):
    """What requeueing a job whose run was lost did."""

    REQUEUED = "requeued"  # queued again under a new dispatch
    FAILED = "failed"  # claimed max_attempts times: failed with WORKER_LOST
    MOVED_ON = "moved_on"  # the job is no longer that run's: nothing changed
