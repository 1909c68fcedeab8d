"""A job's whole life, its record and its files together: the one place that decides them.

    submit ─▶ (queued) ─▶ claim ─▶ Run: progress … succeed | fail | cancelled
                 ▲                   │
                 └──── recover ◀─────┘   (the run was lost: requeue, or fail after N attempts)
    cancel_or_delete, remove_orphans

Two moments are told to the world: a job accepted (counted in the metrics) and a job finished,
whichever way (`_finished`: counted, and its webhook queued).

The job store (common/jobs.py) holds the state diagram and makes each transition atomic; storage
(common/storage.py) holds the files. This module pairs them: what happens to a job's files when
its record moves, and what is undone when a step fails. The API (submit, read, cancel) and the
worker (claim and run, recover, sweep) call these verbs and nothing below them, so a feature that
hooks into a moment of a job's life ("job finished", "job queued") is added here, once.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

import redis
from celery import Celery

from . import errors, metrics
from .errors import ServiceError, StorageError
from .jobs import (
    CANCELLED,
    EXHAUSTED,
    FAILED,
    QUEUED,
    RUNNING,
    STALE,
    SUCCEEDED,
    Job,
    JobStore,
    NewJob,
    new_token,
)
from .logs import log_context
from .queue import held_conversions, publish, publish_webhook
from .redis_conn import connect
from .settings import Settings
from .storage import Storage, open_storage

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5  # what a client is told to wait before asking again
PROGRESS_INTERVAL_SECONDS = 0.5  # at most two progress writes a second per run
ORPHAN_GRACE_SECONDS = 3600  # an upload being written right now is never older than this

# Publishes a job's message: (job id, dispatch, request id). common/queue.py's publish().
Publish = Callable[[str, str, "str | None"], None]
# Announces a finished job to its webhook: (job id). common/queue.py's publish_webhook().
Announce = Callable[[str], None]


def queue_unavailable() -> ServiceError:
    return ServiceError(errors.QUEUE_UNAVAILABLE, "the job queue is unavailable; retry later",
                        status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def quota_exceeded(max_active: int) -> ServiceError:
    return ServiceError(errors.QUOTA_EXCEEDED,
                        f"this API key already has {max_active} unfinished jobs, its limit; "
                        "submit again once one has finished",
                        {"max_active_jobs": max_active}, status=429,
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def worker_lost(attempts: int) -> ServiceError:
    return ServiceError(errors.WORKER_LOST,
                        f"the job's worker was lost on each of its {attempts} attempts")


class JobCancelled(Exception):
    """A client cancelled the job while it ran."""


class RunSuperseded(Exception):
    """Another run owns the job now (or it vanished): this run must stop and write nothing."""


@dataclass
class Submission:
    job: Job
    created: bool  # False: an Idempotency-Key replay of an earlier job


class Lifecycle:
    def __init__(self, store: JobStore, storage: Storage, publish: Publish, announce: Announce,
                 *, max_attempts: int, stall_seconds: float,
                 delete_input_on_finish: bool) -> None:
        self.store = store
        self.storage = storage
        self.publish = publish
        self.announce = announce
        self.max_attempts = max_attempts
        self.stall_seconds = stall_seconds
        self.delete_input_on_finish = delete_input_on_finish

    # -- submitting (the API)

    def check_queue(self) -> None:
        """Raise 503 QUEUE_UNAVAILABLE unless jobs can be queued now (before taking an upload)."""
        try:
            self.store.ping()
        except redis.RedisError:
            raise queue_unavailable() from None

    def check_quota(self, owner: str, max_active: int) -> None:
        """Raise 429 QUOTA_EXCEEDED when `owner` has `max_active` unfinished jobs already
        (before taking an upload; submit() holds the limit exactly)."""
        if self.store.active_count(owner) >= max_active:
            raise quota_exceeded(max_active)

    def submit(self, job_id: str, receive: Callable[[Storage], NewJob],
               idempotency_key: str | None = None, max_active: int = 0) -> Submission:
        """Store the input (`receive` streams it into storage and describes the job), record the
        job, queue it. A failure is undone as far as it can be known to be: before the record
        exists, the upload goes; once it may exist (Redis went away mid-way), the upload stays,
        because the job will run — recover() sends its message once Redis is back, and a retry
        with the same Idempotency-Key answers with it. An upload that never got a record is
        removed by the sweep (remove_orphans)."""
        try:
            new = receive(self.storage)
        except BaseException:
            self.storage.delete(job_id)
            raise
        try:
            created_id, created = self.store.create(new, idempotency_key, max_active)
        except redis.RedisError as exc:
            log.warning("job store unavailable: %s", exc)
            raise queue_unavailable() from None  # the upload stays: the record may exist
        if created_id == "quota":
            self.storage.delete(job_id)
            raise quota_exceeded(max_active)
        if not created:
            return self._replay(created_id, new)
        try:
            job = self.store.get(new.id)  # as queued: read before a worker can change it
        except redis.RedisError as exc:
            log.warning("job store unavailable: %s", exc)
            raise queue_unavailable() from None
        if job is None:  # Redis lost it (restarted from a file a second old): never recorded
            self.storage.delete(job_id)
            raise queue_unavailable()
        self._publish_or_forget(job, idempotency_key)
        self._count(metrics.record_submitted, new.format)
        log.info("job queued", extra={"format": new.format, "input_bytes": new.input_size})
        return Submission(job, created=True)

    def _publish_or_forget(self, job: Job, idempotency_key: str | None) -> None:
        try:
            self.publish(job.id, job.dispatch, job.request_id)
        except Exception as exc:  # the broker is away: one line, the client is told to retry
            log.warning("could not queue the job: %s: %s", type(exc).__name__, exc)
            try:
                self.store.forget(job.id, job.owner, idempotency_key)
            except redis.RedisError:
                pass  # recorded and unpublished: recover() sends it once Redis is back
            else:
                self.storage.delete(job.id)
            raise queue_unavailable() from None
        with contextlib.suppress(redis.RedisError):  # if not, recover() sends it once more
            self.store.published(job.id, job.dispatch)

    def _replay(self, job_id: str, new: NewJob) -> Submission:
        """An Idempotency-Key seen before: the earlier job, if this is the same request."""
        self.storage.delete(new.id)
        earlier = self.store.get(job_id)
        if earlier is None or earlier.owner != new.owner:
            raise ServiceError(errors.JOB_EXPIRED,
                               "the job for this Idempotency-Key has expired", status=410)
        if (earlier.input_sha256, earlier.format, earlier.options) != (
                new.input_sha256, new.format, new.options):
            raise ServiceError(errors.IDEMPOTENCY_KEY_MISMATCH,
                               "this Idempotency-Key was used for a different request",
                               status=422)
        log.info("idempotent replay", extra={"replayed_job_id": job_id})
        return Submission(earlier, created=False)

    # -- reading and cancelling (the API)

    def find(self, job_id: str, owner: str) -> Job:
        """`owner`'s job, or 404 (never existed, or another client's: the same answer) / 410
        (expired or deleted)."""
        job = self.store.get(job_id)
        if job is not None and job.owner == owner:
            return job
        if job is None and self.store.existed(job_id, owner):
            raise ServiceError(errors.JOB_EXPIRED, "this job has expired or was deleted",
                               {"job_id": job_id}, status=410)
        raise ServiceError(errors.JOB_NOT_FOUND, "there is no job with this id", status=404)

    def open_result(self, job: Job, extension: str) -> BinaryIO:
        """The finished job's result file, or 409 (not succeeded) / 410 (gone)."""
        self._result_ready(job)
        try:
            return self.storage.open_result(job.id, extension)
        except StorageError:
            raise ServiceError(errors.JOB_EXPIRED, "the result is no longer available",
                               status=410) from None

    def result_url(self, job: Job, extension: str, *, content_type: str,
                   content_disposition: str, ttl_seconds: int) -> str:
        """A presigned URL of the finished job's result (s3:// storage only), or 409 / 410."""
        self._result_ready(job)
        result_url = getattr(self.storage, "result_url", None)
        if result_url is None:
            raise ServiceError(errors.INTERNAL_ERROR, "this storage cannot sign result URLs")
        try:
            return result_url(job.id, extension, content_type=content_type,
                              content_disposition=content_disposition, ttl_seconds=ttl_seconds)
        except StorageError:
            raise ServiceError(errors.JOB_EXPIRED, "the result is no longer available",
                               status=410) from None

    @staticmethod
    def _result_ready(job: Job) -> None:
        if job.status != SUCCEEDED:
            details = {"status": job.status}
            if job.error:
                details["error"] = job.error
            code = (errors.JOB_NOT_FINISHED if job.status in (QUEUED, RUNNING)
                    else errors.RESULT_UNAVAILABLE)
            raise ServiceError(code, f"the job is {job.status}; a result exists only once it "
                               "has succeeded", details, status=409)

    def page(self, owner: str, limit: int, after: tuple[float, str] | None = None,
             status: str | None = None, tag: str | None = None,
             ) -> tuple[list[Job], tuple[float, str] | None]:
        """`owner`'s jobs, newest first (JobStore.page)."""
        return self.store.page(owner, limit, after, status, tag)

    def cancel_or_delete(self, job_id: str, owner: str) -> Job | None:
        """Cancel a queued or running job (returns it as it is now), or delete a finished one
        and its files (returns None). A queued job's files go now; a running job's run notices
        within a second and removes them (it may be writing them)."""
        job = self.find(job_id, owner)
        before = self.store.discard(job_id, owner)
        if before is None:
            self.find(job_id, owner)  # expired meanwhile: 404/410
        if before in (QUEUED, RUNNING):
            self._finished(job, CANCELLED)
        if before == RUNNING:
            return self.store.get(job_id)
        self.storage.delete(job_id)
        return self.store.get(job_id) if before == QUEUED else None

    def _finished(self, job: Job, status: str, error_code: str | None = None) -> None:
        """Every job that reaches a final status passes here once (the status was set by the
        one transition that won): the moment to tell the world. `job` is as it was read before
        that transition; `status` and `error_code` are what it made of it."""
        self._count(metrics.record_finished, job, status, error_code)
        if job.webhook_url:
            try:
                self.announce(job.id)
            except Exception as exc:  # the job's state is right; only its webhook is late
                log.warning("webhook not queued: %s: %s", type(exc).__name__, exc)

    def _count(self, record: Callable[..., None], *args: object) -> None:
        """Record a figure for GET /metrics; the job's state is right whether or not it is."""
        try:
            record(self.store.redis, *args)
        except redis.RedisError as exc:
            log.warning("job figures not recorded: %s", type(exc).__name__)

    # -- running (the worker)

    def claim(self, job_id: str, dispatch: str | None, worker: str) -> Run | None:
        """Start a new run of the job from its message, or None when it is not to run."""
        job = self.store.get(job_id)
        if job is None:
            log.info("job not run: it is gone")
            return None
        before, run_id = self.store.start(job_id, job.owner, worker, dispatch,
                                          self.max_attempts,
                                          worker_lost(self.max_attempts).to_record())
        if before == EXHAUSTED:
            self._discard_files_of_failed(job_id)
            self._finished(job, FAILED, errors.WORKER_LOST)
            log.warning("job failed: its runs were lost %d times", self.max_attempts)
            return None
        if before not in (QUEUED, RUNNING):
            log.info("job not run: it is %s", {STALE: "queued again under a newer message"}
                     .get(before, before or "gone"))
            return None
        if before == RUNNING:
            log.warning("job redelivered: restarting it from the beginning")
        job = self.store.get(job_id)
        if job is None:  # expired between the claim and now
            return None
        self.storage.discard_output(job_id)  # what an earlier run may have left
        return Run(self, job, run_id)

    def _discard_files_of_failed(self, job_id: str) -> None:
        self.storage.discard_output(job_id)
        if self.delete_input_on_finish:
            self.storage.delete_input(job_id)

    # -- recovering (every worker, each heartbeat)

    def keep_alive(self, job_ids: Iterable[str]) -> None:
        """A live worker is running these jobs: their runs are not lost, however slow."""
        self.store.keep_alive(job_ids)

    def recover(self) -> None:
        """Requeue every running job whose run is gone (no progress and no worker running it
        for `stall_seconds`), or fail it with WORKER_LOST after `max_attempts`; queue again a
        queued job whose message a worker received but never started; send again the message
        of any queued job that never reached the broker."""
        for job_id in self.store.silent_runs(self.stall_seconds):
            job = self.store.get(job_id)
            if job is None or job.status != RUNNING or job.run_id is None:
                self.store.untrack(job_id)  # expired, or moved on meanwhile
                continue
            with log_context(job_id=job_id, request_id=job.request_id):
                self._requeue(job)
        for job_id, dispatch in list(held_conversions(self.store.redis, self.stall_seconds)):
            new = new_token()
            if self.store.redispatch(job_id, dispatch, new):
                job = self.store.get(job_id)
                with log_context(job_id=job_id, request_id=job.request_id if job else None):
                    log.warning("job's message was received but never started: queued again")
                    self.publish(job_id, new, job.request_id if job else None)
                    self.store.published(job_id, new)
        for job_id in self.store.unpublished(self.stall_seconds):
            job = self.store.get(job_id)
            if job is None or job.status != QUEUED or job.dispatch is None:
                self.store.untrack(job_id)
                continue
            with log_context(job_id=job_id, request_id=job.request_id):
                log.warning("job's message was never confirmed sent: sending it again")
                self.publish(job.id, job.dispatch, job.request_id)
                self.store.published(job.id, job.dispatch)

    def _requeue(self, job: Job) -> None:
        dispatch = new_token()
        outcome = self.store.requeue(job.id, job.owner, job.run_id, dispatch, self.max_attempts,
                                     worker_lost(job.attempts).to_record())
        silent = round(time.time() - (job.updated_at or job.created_at))
        if outcome == "requeued":
            log.warning("job's run was lost: queued again", extra={
                "attempt": job.attempts, "silent_seconds": silent, "worker": job.worker})
            self.publish(job.id, dispatch, job.request_id)
            self.store.published(job.id, dispatch)
        elif outcome == FAILED:
            self._discard_files_of_failed(job.id)
            self._finished(job, FAILED, errors.WORKER_LOST)
            log.warning("job failed: its worker was lost", extra={
                "attempt": job.attempts, "silent_seconds": silent, "worker": job.worker})

    # -- cleaning (beat's sweep)

    def remove_orphans(self, grace_seconds: float = ORPHAN_GRACE_SECONDS) -> int:
        """Delete the files of jobs whose record is gone (expired, or an upload whose API
        process died before recording it). Returns how many jobs' files went."""
        removed = 0
        for job_id in self.storage.expired(grace_seconds):
            if self.store.get(job_id) is None:
                self.storage.delete(job_id)
                removed += 1
        return removed


class Run:
    """One attempt at a job, owned by the worker process that claimed it."""

    def __init__(self, lifecycle: Lifecycle, job: Job, run_id: str) -> None:
        self.lifecycle = lifecycle
        self.job = job
        self.run_id = run_id
        self._last_progress = time.monotonic()

    @property
    def _store(self) -> JobStore:
        return self.lifecycle.store

    @property
    def _storage(self) -> Storage:
        return self.lifecycle.storage

    def open_input(self) -> BinaryIO:
        return self._storage.open_input(self.job.id)

    def write_result(self, extension: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return self._storage.write_result(self.job.id, extension)

    def progress(self, bytes_done: int, bytes_total: int) -> None:
        """The converter's progress callback: records progress (at most twice a second) and
        stops a run that was cancelled or superseded by raising into the converter."""
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_INTERVAL_SECONDS:
            return
        self._last_progress = now
        status = self._store.progress(self.job.id, self.run_id, bytes_done,
                                      bytes_total or self.job.input_size)
        if status == RUNNING:
            return
        if status == CANCELLED:
            raise JobCancelled()
        raise RunSuperseded(status)

    def succeed(self, result: dict) -> bool:
        return self._finish(SUCCEEDED, result=result)

    def fail(self, error: ServiceError) -> bool:
        return self._finish(FAILED, error.code, error=error.to_record())

    def cancelled(self) -> None:
        """The client cancelled the job while this run converted it: its files go."""
        self._storage.delete(self.job.id)
        log.info("job cancelled while running; its files are removed")

    def _finish(self, status: str, error_code: str | None = None, **fields: dict) -> bool:
        """Record the outcome if this run still owns the job. True if it did."""
        if not self._store.finish(self.job.id, self.job.owner, self.run_id, status, **fields):
            # Cancelled (or superseded) at the last moment: this run's output must not stay.
            if self._store.status(self.job.id) == CANCELLED:
                self._storage.delete(self.job.id)
            log.info("job finished but was no longer this run's; output discarded")
            return False
        if status != SUCCEEDED:
            self._storage.discard_output(self.job.id)
        if self.delete_input_on_finish:
            self._storage.delete_input(self.job.id)
        self.lifecycle._finished(self.job, status, error_code)
        return True

    @property
    def delete_input_on_finish(self) -> bool:
        return self.lifecycle.delete_input_on_finish


def build_lifecycle(settings: Settings, celery: Celery) -> Lifecycle:
    """The one way the API and the worker build it: Redis, storage and the queue from settings."""
    return Lifecycle(
        JobStore(connect(settings), result_ttl_seconds=settings.result_ttl_seconds,
                 tombstone_ttl_seconds=settings.tombstone_ttl_seconds),
        open_storage(settings),
        lambda job_id, dispatch, request_id: publish(celery, job_id, dispatch, request_id),
        lambda job_id: publish_webhook(celery, job_id),
        max_attempts=settings.job_max_attempts,
        stall_seconds=settings.job_stall_seconds,
        delete_input_on_finish=settings.delete_input_on_finish,
    )
