"""A job's whole life, its record and its files together: the one place that decides them.

    open_upload ─▶ (the client puts its parts in the bucket) ─▶ submit_upload ─┐
    reserve ─▶ submit ─────────▶ (queued) ─▶ claim ─▶ Run: progress … succeed | fail | cancelled
    submit_import (input_url) ─┘       ▲          (an import's run first: store_fetched_input)
                                       │                   │
                                       └──── recover ◀─────┘   (the run was lost: requeue, or
                                                                 fail after N attempts)
    cancel_or_delete, give_up_upload, remove_orphans
    stopped_run (its worker killed the run's process: the hard time limit fails the job here,
                 once; a cancelled job's files go)

Two moments are told to the world: a job accepted (counted in the metrics) and a job finished,
whichever way (`_finished`: counted, and its webhook queued).

The job store (jobs/store.py) holds the state diagram and makes each transition atomic; storage
(jobs/storage.py) holds the files. This module pairs them: what happens to a job's files when
its record moves, and what is undone when a step fails. The API (submit, read, cancel) and the
worker (claim and run, recover, sweep, webhooks) call these verbs and nothing below them (the
import-linter contracts in pyproject.toml hold them to it), so a feature that hooks into a moment
of a job's life ("job finished", "job queued") is added here, once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import redis

from common import errors
from common.errors import ServiceError, StorageError, StorageFull
from common.logs import log_context
from common.outbound_urls import shown

from .direct_uploads import DirectUploads, UploadRecord
from .figures import JobFigures
from .queue import held_conversions
from .reservation import QuotaFull, Reservation
from .status import Claim, Creation, JobStatus, Ownership, Requeue
from .storage import DirectUploadUnsupported, Storage, UploadIncomplete, UploadTooLarge
from .store import Job, JobStore, NewJob, NotReplicated, new_job_id, new_token
from .vanished import vanished_conversions

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5  # what a client is told to wait before asking again
PROGRESS_INTERVAL_SECONDS = 0.5  # at most two progress writes a second per run
ORPHAN_GRACE_SECONDS = 3600  # an upload being written right now is never older than this

# Publishes a job's message: (job id, dispatch, request id). jobs/queue.py's publish().
Publish = Callable[[str, str, "str | None"], None]
# Announces a finished job to its webhook: (job id). jobs/queue.py's publish_webhook().
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


def insufficient_storage(full: StorageFull) -> ServiceError:
    """507: storage keeps STORAGE_MIN_FREE_BYTES free and an upload would cross it. Not 503:
    space comes back when results expire (hours) or an operator frees it, not within any
    Retry-After a client could be told, and a client's generic 503 retry loop would only
    resend the same bytes to the same full disk."""
    return ServiceError(errors.INSUFFICIENT_STORAGE,
                        "the service is short of storage space; this upload was not kept",
                        {"min_free_bytes": full.min_free_bytes}, status=507,
                        headers={"Connection": "close"})


def worker_lost(attempts: int) -> ServiceError:
    return ServiceError(errors.WORKER_LOST,
                        f"the job's worker was lost on each of its {attempts} attempts")


def upload_too_large(limit: int, size: int | None = None) -> ServiceError:
    details: dict = {"max_bytes": limit}
    if size is not None:
        details["size_bytes"] = size
    return ServiceError(errors.PAYLOAD_TOO_LARGE,
                        f"the XML exceeds the upload limit of {limit} bytes", details, status=413)


def upload_not_found() -> ServiceError:
    return ServiceError(errors.UPLOAD_NOT_FOUND, "there is no upload with this id", status=404)


def upload_expired(upload_id: str) -> ServiceError:
    return ServiceError(errors.UPLOAD_EXPIRED, "this upload has expired or was given up; "
                        "start another with POST /uploads", {"upload_id": upload_id}, status=410)


@dataclass(frozen=True)
class OpenedUpload:
    """A direct upload as POST /uploads answers it."""

    id: str
    size: int
    part_size: int
    urls: list[str]
    expires_at: float


class JobCancelled(Exception):
    """A client cancelled the job while it ran."""


class RunSuperseded(Exception):
    """Another run owns the job now (or it vanished): this run must stop and write nothing."""


@dataclass
class Submission:
    job: Job
    created: bool  # False: an Idempotency-Key replay of an earlier job


class Lifecycle:
    def __init__(self, store: JobStore, storage: Storage, figures: JobFigures, publish: Publish,
                 announce: Announce, *, max_attempts: int, stall_seconds: float,
                 delete_input_on_finish: bool, reservation_seconds: int = 60,
                 uploads: DirectUploads | None = None, upload_url_ttl_seconds: int = 3600
                 ) -> None:
        self._store = store
        self._storage = storage
        self._figures = figures
        self._publish = publish
        self._announce = announce
        self.max_attempts = max_attempts
        self.stall_seconds = stall_seconds
        self.delete_input_on_finish = delete_input_on_finish
        self.reservation_seconds = reservation_seconds
        self._uploads = uploads or DirectUploads(store.redis, store.tombstone_ttl)
        self.upload_url_ttl_seconds = upload_url_ttl_seconds

    # -- submitting (the API)

    def check_queue(self) -> None:
        """Raise 503 QUEUE_UNAVAILABLE unless jobs can be queued now (before taking an upload):
        Redis answers and, with REDIS_MIN_REPLICAS, that many replicas are in step, so that
        no upload is taken only to be refused when the submission's WAIT hears from none."""
        required = self._store.min_replicas
        try:
            if not required:
                self._store.ping()
                return
            in_step = self._store.replicas_in_step()
        except redis.RedisError:
            raise queue_unavailable() from None
        if in_step < required:
            log.warning("jobs refused: %d of %d replicas in step", in_step, required)
            raise queue_unavailable()

    def ping(self) -> None:
        """Raise StoreUnavailable unless Redis answers."""
        self._store.ping()

    def storage_check(self) -> dict:
        """{"ok": True} when storage takes a write now, else {"ok": False, "error": <errno
        name>} (the name only: a message would carry a filesystem path)."""
        try:
            self._storage.check_writable()
        except OSError as exc:
            return {"ok": False, "error": errno.errorcode.get(exc.errno or 0, "OSError")}
        return {"ok": True}

    @contextlib.contextmanager
    def reserve(self, owner: str, job_id: str, max_active: int) -> Iterator[None]:
        """Hold one of `owner`'s `max_active` slots for the upload of `job_id` for the block
        (jobs/reservation.py): 429 QUOTA_EXCEEDED at once when its unfinished jobs and uploads
        in flight fill them — before the body is read. submit() inside the block turns the
        slot into the job; otherwise it is given back when the block ends."""
        try:
            with Reservation(self._store, owner, job_id, max_active, self.reservation_seconds):
                yield
        except QuotaFull:
            raise quota_exceeded(max_active) from None
        except redis.RedisError as exc:
            log.warning("job store unavailable: %s", exc)
            raise queue_unavailable() from None

    def check_room(self, size: int) -> None:
        """507 INSUFFICIENT_STORAGE when storing `size` more bytes would leave less free space
        than storage keeps (before taking an upload of announced size)."""
        try:
            self._storage.check_room(size)
        except StorageFull as full:
            raise insufficient_storage(full) from None

    def submit(self, job_id: str, receive: Callable[[Storage], NewJob],
               idempotency_key: str | None = None, max_active: int = 0) -> Submission:
        """Store the input (`receive` streams it into storage and describes the job), record the
        job, queue it. A failure is undone as far as it can be known to be: before the record
        exists, the upload goes; once it may exist (Redis went away mid-way), the upload stays,
        because the job will run — recover() sends its message once Redis is back, and a retry
        with the same Idempotency-Key answers with it. An upload that never got a record is
        removed by the sweep (remove_orphans)."""
        try:
            new = receive(self._storage)
        except StorageFull as full:  # stopped before the chunk that would cross the line
            self._storage.delete(job_id)
            raise insufficient_storage(full) from None
        except BaseException:
            self._storage.delete(job_id)
            raise
        try:
            created = self._store.create(new, idempotency_key, max_active)
        except redis.RedisError as exc:
            log.warning("job store unavailable: %s", exc)
            raise queue_unavailable() from None  # the upload stays: the record may exist
        if created.outcome is Creation.QUOTA_FULL:
            self._storage.delete(job_id)
            raise quota_exceeded(max_active)
        if created.outcome is Creation.REPLAYED:
            return self._replay(created.job_id, new)
        try:
            job = self._store.get(new.id)  # as queued: read before a worker can change it
        except redis.RedisError as exc:
            log.warning("job store unavailable: %s", exc)
            raise queue_unavailable() from None
        if job is None:  # Redis lost it (restarted from a file a second old): never recorded
            self._storage.delete(job_id)
            raise queue_unavailable()
        self._publish_or_forget(job, idempotency_key)
        self._count(self._figures.submitted, new.format)
        log.info("job queued", extra={"format": new.format, "input_bytes": new.input_size})
        return Submission(job, created=True)

    def submit_import(self, new: NewJob, idempotency_key: str | None = None,
                      max_active: int = 0) -> Submission:
        """Record and queue a job whose input arrives later: `new.input_url`, which its run
        fetches into storage before converting (Run.store_fetched_input). Nothing is stored
        now; quota, Idempotency-Key and the queue work as for an upload."""
        if not new.input_url:
            raise ValueError("an imported job needs its input_url")
        return self.submit(new.id, lambda _storage: new, idempotency_key, max_active)

    def _publish_or_forget(self, job: Job, idempotency_key: str | None) -> None:
        try:
            self._publish(job.id, job.dispatch, job.request_id)
        except Exception as exc:  # the broker is away: one line, the client is told to retry
            log.warning("could not queue the job: %s: %s", type(exc).__name__, exc)
            try:
                self._store.forget(job.id, job.owner, idempotency_key)
            except redis.RedisError:
                pass  # recorded and unpublished: recover() sends it once Redis is back
            else:
                self._storage.delete(job.id)
            raise queue_unavailable() from None
        try:
            self._store.published_durably(job.id, job.dispatch)
        except NotReplicated as short:
            # Not on enough replicas: a failover now would lose it, so it is not accepted (the
            # message, if a worker takes it, finds no record). The client retries.
            log.warning("job not acknowledged by a replica: %s", short)
            with contextlib.suppress(redis.RedisError):
                self._store.forget(job.id, job.owner, idempotency_key)
                self._storage.delete(job.id)
            raise queue_unavailable() from None
        except redis.RedisError:
            if self._store.min_replicas:
                # Recorded and sent, perhaps, but not known to be on a replica: 503. If it was
                # kept it runs, and a retry with the same Idempotency-Key answers with it.
                raise queue_unavailable() from None
            # if not, recover() sends it once more

    def _replay(self, job_id: str, new: NewJob) -> Submission:
        """An Idempotency-Key seen before: the earlier job, if this is the same request."""
        self._storage.delete(new.id)
        earlier = self._store.get(job_id)
        if earlier is None or earlier.owner != new.owner:
            raise ServiceError(errors.JOB_EXPIRED,
                               "the job for this Idempotency-Key has expired", status=410)
        if (_source(earlier), earlier.format, earlier.options) != (
                _source(new), new.format, new.options):
            raise ServiceError(errors.IDEMPOTENCY_KEY_MISMATCH,
                               "this Idempotency-Key was used for a different request",
                               status=422)
        log.info("idempotent replay", extra={"replayed_job_id": job_id})
        return Submission(earlier, created=False)

    # -- direct uploads (the API): the client puts its input into the bucket itself

    def direct_upload_origin(self) -> str | None:
        """Where a direct upload's parts go (scheme://host[:port]), or None: not offered."""
        return self._storage.direct_upload_origin()

    def open_upload(self, owner: str, size: int, filename: str, max_active: int,
                    limit: int) -> OpenedUpload:
        """Start a direct upload of `size` bytes: 413 past `limit`, 429 when `owner`'s
        unfinished jobs and uploads fill `max_active` (the upload holds a slot until it becomes
        its job, is given up, or expires), 501 DIRECT_UPLOAD_UNAVAILABLE when storage has no
        URLs to give (local storage: the client streams through POST /jobs instead)."""
        if size > limit:
            raise upload_too_large(limit, size)
        self.check_queue()  # no bytes into the bucket for a job that could not be queued
        upload_id = new_job_id()
        ttl = self.upload_url_ttl_seconds
        try:
            held = self._store.reserve(owner, upload_id, max_active, ttl)
        except redis.RedisError as exc:
            log.warning("job store unavailable: %s", exc)
            raise queue_unavailable() from None
        if not held:
            raise quota_exceeded(max_active)
        started = time.time()
        try:
            direct = self._storage.start_direct_upload(upload_id, size, ttl)
        except DirectUploadUnsupported:
            self._release(owner, upload_id)
            raise ServiceError(errors.DIRECT_UPLOAD_UNAVAILABLE,
                               "this service stores files locally: send the file in the body "
                               "of POST /jobs", status=501) from None
        except BaseException:
            self._release(owner, upload_id)
            raise
        opened = OpenedUpload(upload_id, size, direct.part_size, direct.urls, started + ttl)
        try:
            self._uploads.add(UploadRecord(upload_id, owner, direct.storage_upload_id, size,
                                           filename, opened.expires_at, used=False))
        except redis.RedisError as exc:
            log.warning("job store unavailable: %s", exc)
            self._storage.abort_direct_upload(upload_id, direct.storage_upload_id)
            self._release(owner, upload_id)
            raise queue_unavailable() from None
        log.info("direct upload opened", extra={"upload_id": upload_id, "input_bytes": size,
                                                "parts": len(direct.urls)})
        return opened

    def submit_upload(self, upload_id: str, owner: str, describe: Callable[[int, str], NewJob],
                      max_active: int, limit: int) -> Submission:
        """Make the job of `owner`'s direct upload once its parts are all in the bucket
        (`describe(size, filename)` describes it; the job's id is the upload's). 404 for an
        unknown upload or another key's, 410 once expired or given up, 409 UPLOAD_INCOMPLETE
        while parts are missing (the upload stays open), 413 when the parts add up to more than
        `limit` (they are removed). A repeated call answers the job the first one made."""
        record = self._upload_of(upload_id, owner)
        if record.used or self._store.get(upload_id) is not None:
            return Submission(self.find(upload_id, owner), created=False)
        if record.expired:
            self._drop_upload(record)
            raise upload_expired(upload_id)
        if not self._uploads.claim(upload_id):
            raise ServiceError(errors.UPLOAD_INCOMPLETE, "this upload is being completed by "
                               "another request", {"upload_id": upload_id}, status=409)
        try:
            size = self._storage.complete_direct_upload(upload_id, record.storage_upload_id,
                                                        record.size, limit)
        except UploadTooLarge as exc:  # its parts are gone already
            self._drop_upload(record)
            raise upload_too_large(limit, exc.size) from None
        except UploadIncomplete as exc:
            self._uploads.unclaim(upload_id)
            raise ServiceError(errors.UPLOAD_INCOMPLETE, "the upload's parts are not all "
                               "there: put the missing ones, then ask again", {
                                   "upload_id": upload_id, "expected_bytes": exc.expected,
                                   "received_bytes": exc.received, "parts": exc.parts},
                               status=409) from None
        except StorageError:  # aborted meanwhile (the sweep, a bucket rule)
            self._drop_upload(record)
            raise upload_expired(upload_id) from None
        except BaseException:
            with contextlib.suppress(redis.RedisError):
                self._uploads.unclaim(upload_id)
            raise
        try:
            submission = self.submit(upload_id, lambda _: describe(size, record.filename),
                                     None, max_active)
        except BaseException:
            with contextlib.suppress(redis.RedisError):
                self._uploads.unclaim(upload_id)
            raise
        with contextlib.suppress(redis.RedisError):  # if not, the job itself answers a retry
            self._uploads.used(upload_id)
        return submission

    def give_up_upload(self, upload_id: str, owner: str) -> None:
        """The client will not finish its direct upload: its parts go and its quota slot comes
        back now, not at its expiry. 404 unknown or another key's; 410 once it made its job."""
        record = self._upload_of(upload_id, owner)
        if record.used or self._store.get(upload_id) is not None:
            raise upload_expired(upload_id)
        self._drop_upload(record)

    def _upload_of(self, upload_id: str, owner: str) -> UploadRecord:
        try:
            record = self._uploads.get(upload_id)
        except redis.RedisError as exc:
            log.warning("job store unavailable: %s", exc)
            raise queue_unavailable() from None
        if record is None or record.owner != owner:  # one key never learns of another's
            raise upload_not_found()
        return record

    def _drop_upload(self, record: UploadRecord) -> None:
        self._storage.abort_direct_upload(record.id, record.storage_upload_id)
        self._release(record.owner, record.id)
        with contextlib.suppress(redis.RedisError):
            self._uploads.expire_now(record.id)

    def _release(self, owner: str, upload_id: str) -> None:
        try:
            self._store.release(owner, upload_id)
        except redis.RedisError as error:  # it lapses by itself
            log.warning("upload reservation not released: %s", type(error).__name__)

    # -- reading and cancelling (the API)

    def wait(self, job: Job, seconds: float) -> Job:
        """The job once it has finished or `seconds` have passed, whichever comes first (a
        Redis outage meanwhile answers with what was read last)."""
        deadline = time.monotonic() + seconds
        pause = 0.05
        while not job.finished and time.monotonic() < deadline:
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 1.5, 0.5)
            try:
                latest = self._store.get(job.id)
            except redis.RedisError:
                break
            if latest is None:
                break
            job = latest
        return job

    def find(self, job_id: str, owner: str) -> Job:
        """`owner`'s job, or 404 (never existed, or another client's: the same answer) / 410
        (expired or deleted)."""
        job = self._store.get(job_id)
        if job is not None and job.owner == owner:
            return job
        if job is None and self._store.existed(job_id, owner):
            raise ServiceError(errors.JOB_EXPIRED, "this job has expired or was deleted",
                               {"job_id": job_id}, status=410)
        raise ServiceError(errors.JOB_NOT_FOUND, "there is no job with this id", status=404)

    def open_result(self, job: Job, extension: str) -> BinaryIO:
        """The finished job's result file, or 409 (not succeeded) / 410 (gone)."""
        self._result_ready(job)
        try:
            return self._storage.open_result(job.id, extension)
        except StorageError:
            raise ServiceError(errors.JOB_EXPIRED, "the result is no longer available",
                               status=410) from None

    def result_url(self, job: Job, extension: str, *, content_type: str,
                   content_disposition: str, ttl_seconds: int) -> str | None:
        """A URL the client may fetch the finished job's result from directly (a presigned URL
        of the object store; None when storage has none), or 409 / 410."""
        self._result_ready(job)
        try:
            return self._storage.result_url(job.id, extension, content_type=content_type,
                                            content_disposition=content_disposition,
                                            ttl_seconds=ttl_seconds)
        except StorageError:
            raise ServiceError(errors.JOB_EXPIRED, "the result is no longer available",
                               status=410) from None

    @staticmethod
    def _result_ready(job: Job) -> None:
        if job.status is not JobStatus.SUCCEEDED:
            details = {"status": job.status.value}
            if job.error:
                details["error"] = job.error
            code = errors.RESULT_UNAVAILABLE if job.finished else errors.JOB_NOT_FINISHED
            raise ServiceError(code, f"the job is {job.status}; a result exists only once it "
                               "has succeeded", details, status=409)

    def page(self, owner: str, limit: int, after: tuple[float, str] | None = None,
             status: JobStatus | None = None, tag: str | None = None,
             ) -> tuple[list[Job], tuple[float, str] | None]:
        """`owner`'s jobs, newest first (JobStore.page)."""
        return self._store.page(owner, limit, after, status, tag)

    def cancel_or_delete(self, job_id: str, owner: str) -> Job | None:
        """Cancel a queued or running job (returns it as it is now), or delete a finished one
        and its files (returns None). A queued job's files go now; a running job's run notices
        within a second and removes them (it may be writing them)."""
        job = self.find(job_id, owner)
        before = self._store.discard(job_id, owner)
        if before is None:
            self.find(job_id, owner)  # expired meanwhile: 404/410
        if before is not None and not before.finished:
            self._finished(job, JobStatus.CANCELLED)
        if before is JobStatus.RUNNING:
            return self._store.get(job_id)
        self._storage.delete(job_id)
        return self._store.get(job_id) if before is JobStatus.QUEUED else None

    # -- webhooks (the worker)

    def get(self, job_id: str) -> Job | None:
        """A job whoever owns it (its webhook is sent for its owner), or None when it is gone."""
        return self._store.get(job_id)

    def record_webhook(self, job_id: str, delivery: dict) -> None:
        """How the job's webhook delivery went, shown with the job (while it exists)."""
        self._store.record_webhook(job_id, delivery)

    # -- the moment a job finishes

    def _finished(self, job: Job, status: JobStatus, error_code: str | None = None) -> None:
        """Every job that reaches a final status passes here once (the status was set by the
        one transition that won): the moment to tell the world. `job` is as it was read before
        that transition; `status` and `error_code` are what it made of it."""
        self._count(self._figures.finished, job, status, error_code)
        if job.webhook_url:
            try:
                self._announce(job.id)
            except Exception as exc:  # the job's state is right; only its webhook is late
                log.warning("webhook not queued: %s: %s", type(exc).__name__, exc)

    def _count(self, record: Callable[..., None], *args: object) -> None:
        """Record a figure for GET /metrics; the job's state is right whether or not it is."""
        try:
            record(*args)
        except redis.RedisError as exc:
            log.warning("job figures not recorded: %s", type(exc).__name__)

    # -- running (the worker)

    def claim(self, job_id: str, dispatch: str | None, worker: str) -> Run | None:
        """Start a new run of the job from its message, or None when it is not to run."""
        job = self._store.get(job_id)
        if job is None:
            log.info("job not run: it is gone")
            return None
        claim, run_id = self._store.start(job_id, job.owner, worker, dispatch,
                                          self.max_attempts,
                                          worker_lost(self.max_attempts).to_record())
        if claim is Claim.EXHAUSTED:
            self._discard_files_of_failed(job_id)
            self._finished(job, JobStatus.FAILED, errors.WORKER_LOST)
            log.warning("job failed: its runs were lost %d times", self.max_attempts)
            return None
        if not claim.owns:
            log.info("job not run: %s", _NOT_RUN[claim])
            return None
        if claim is Claim.RESTARTED:
            log.warning("job redelivered: restarting it from the beginning")
        job = self._store.get(job_id)
        if job is None:  # expired between the claim and now
            return None
        self._storage.discard_output(job_id)  # what an earlier run may have left
        return Run(job, run_id, self._store, self._storage, self._finished,
                   delete_input_on_finish=self.delete_input_on_finish)

    def _discard_files_of_failed(self, job_id: str) -> None:
        self._storage.discard_output(job_id)
        if self.delete_input_on_finish:
            self._storage.delete_input(job_id)

    # -- recovering (every worker, each heartbeat)

    def keep_alive(self, job_ids: Iterable[str]) -> None:
        """A live worker is running these jobs: their runs are not lost, however slow."""
        self._store.keep_alive(job_ids)

    def recover(self) -> None:
        """Requeue every running job whose run is gone (no progress and no worker running it
        for `stall_seconds`), or fail it with WORKER_LOST after `max_attempts`; queue again a
        queued job whose message a worker received but never started; send again the message
        of any queued job that never reached the broker."""
        for job_id in self._store.silent_runs(self.stall_seconds):
            job = self._store.get(job_id)
            if job is None or job.status is not JobStatus.RUNNING or job.run_id is None:
                self._store.untrack(job_id)  # expired, or moved on meanwhile
                continue
            with log_context(job_id=job_id, request_id=job.request_id):
                self._requeue(job)
        for job_id, dispatch in list(held_conversions(self._store.redis, self.stall_seconds)):
            self._redispatch(job_id, dispatch, "received but never started")
        for job_id, dispatch in list(vanished_conversions(self._store.redis,
                                                          self.stall_seconds)):
            self._redispatch(job_id, dispatch, "lost by the broker (taken by a worker that died)")
        for job_id in self._store.unpublished(self.stall_seconds):
            job = self._store.get(job_id)
            if job is None or job.status is not JobStatus.QUEUED or job.dispatch is None:
                self._store.untrack(job_id)
                continue
            with log_context(job_id=job_id, request_id=job.request_id):
                log.warning("job's message was never confirmed sent: sending it again")
                self._publish(job.id, job.dispatch, job.request_id)
                self._store.published(job.id, job.dispatch)

    def _redispatch(self, job_id: str, dispatch: str, why: str) -> None:
        """A queued job's message of `dispatch` is stranded or gone: queue it again under a new
        dispatch (the old message, should it turn up, is stale)."""
        new = new_token()
        if self._store.redispatch(job_id, dispatch, new):
            job = self._store.get(job_id)
            with log_context(job_id=job_id, request_id=job.request_id if job else None):
                log.warning("job's message was %s: queued again", why)
                self._publish(job_id, new, job.request_id if job else None)
                self._store.published(job_id, new)

    def _requeue(self, job: Job) -> None:
        dispatch = new_token()
        outcome = self._store.requeue(job.id, job.owner, job.run_id, dispatch, self.max_attempts,
                                     worker_lost(job.attempts).to_record())
        silent = round(time.time() - (job.updated_at or job.created_at))
        if outcome is Requeue.REQUEUED:
            log.warning("job's run was lost: queued again", extra={
                "attempt": job.attempts, "silent_seconds": silent, "worker": job.worker})
            self._publish(job.id, dispatch, job.request_id)
            self._store.published(job.id, dispatch)
        elif outcome is Requeue.FAILED:
            self._discard_files_of_failed(job.id)
            self._finished(job, JobStatus.FAILED, errors.WORKER_LOST)
            log.warning("job failed: its worker was lost", extra={
                "attempt": job.attempts, "silent_seconds": silent, "worker": job.worker})

    # -- runs stopped from outside (the worker's main process)

    def stopped_run(self, job_id: str, worker: str, error: ServiceError | None) -> bool:
        """The process that ran `job_id` on `worker` was killed by its worker (the hard time
        limit, or a cancelled run that did not stop in time), so that run will write nothing
        more. With `error`, the job fails with it now, once, and is not run again; without, the
        job was cancelled: its files go. False when the job is no longer that worker's run."""
        job = self._store.get(job_id)
        if job is None:
            return False
        if error is None:
            if job.status is JobStatus.CANCELLED:
                self._storage.delete(job_id)
                log.info("cancelled job's process was killed; its files are removed")
                return True
            return False
        if job.status is not JobStatus.RUNNING or job.worker != worker or job.run_id is None:
            return False
        run = Run(job, job.run_id, self._store, self._storage, self._finished,
                  delete_input_on_finish=self.delete_input_on_finish)
        if not run.fail(error):
            return False
        log.warning("job failed: its process was stopped", extra={
            "error_code": error.code, "attempt": job.attempts, "worker": worker})
        return True

    # -- cleaning (beat's sweep)

    def remove_orphans(self, grace_seconds: float = ORPHAN_GRACE_SECONDS) -> int:
        """Delete the files of jobs whose record is gone (expired, or an upload whose API
        process died before recording it). Returns how many jobs' files went."""
        removed = 0
        for job_id in self._storage.expired(grace_seconds):
            if self._store.get(job_id) is None:
                self._storage.delete(job_id)
                removed += 1
        # Multipart uploads never completed: a direct upload is past its URLs' life by then.
        older_than = max(grace_seconds, self.upload_url_ttl_seconds)
        for job_id in set(self._storage.unfinished_uploads(older_than)):
            if self._store.get(job_id) is None:
                self._storage.delete(job_id)
                removed += 1
        return removed


class Run:
    """One attempt at a job, owned by the worker process that claimed it."""

    def __init__(self, job: Job, run_id: str, store: JobStore, storage: Storage,
                 finished: Callable[[Job, JobStatus, str | None], None], *,
                 delete_input_on_finish: bool) -> None:
        self.job = job
        self.run_id = run_id
        self._store = store
        self._storage = storage
        self._announce_finished = finished  # Lifecycle._finished: the one moment of the end
        self._delete_input_on_finish = delete_input_on_finish
        self._last_progress = time.monotonic()

    def open_input(self) -> BinaryIO:
        return self._storage.open_input(self.job.id)

    def write_result(self, extension: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return self._storage.write_result(self.job.id, extension)

    def store_fetched_input(self, chunks: Iterable[bytes], total: int | None) -> None:
        """An imported job's input, as its run fetches it (`total`: the size announced, if
        any): streamed into storage with progress (stage "fetching"; a cancelled or superseded
        run stops here, nothing kept), then its size and sha256 recorded and the stage set to
        "converting". Any failure of `chunks` leaves nothing stored and propagates."""
        digest = hashlib.sha256()
        size = 0

        def counted() -> Iterator[bytes]:
            nonlocal size
            self._report(0, total or 0, stage="fetching", force=True)
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                self._report(size, total or 0, stage="fetching")
                yield chunk

        self._storage.save_input(self.job.id, counted())
        sha256 = digest.hexdigest()
        self._report(0, size, stage="converting", input_size=size, input_sha256=sha256,
                     force=True)
        self.job = dataclasses.replace(self.job, input_size=size, input_sha256=sha256,
                                       bytes_total=size, stage="converting")

    def progress(self, bytes_done: int, bytes_total: int) -> None:
        """The converter's progress callback: records progress (at most twice a second) and
        stops a run that was cancelled or superseded by raising into the converter."""
        self._report(bytes_done, bytes_total or self.job.input_size)

    def _report(self, bytes_done: int, bytes_total: int, *, force: bool = False,
                **fields: object) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_INTERVAL_SECONDS:
            return
        self._last_progress = now
        found = self._store.progress(self.job.id, self.run_id, bytes_done, bytes_total,
                                     **fields)
        if found is Ownership.CANCELLED:
            raise JobCancelled()
        if found is not Ownership.OWNED:
            raise RunSuperseded(found)

    def succeed(self, result: dict) -> bool:
        return self._finish(JobStatus.SUCCEEDED, result=result)

    def fail(self, error: ServiceError) -> bool:
        return self._finish(JobStatus.FAILED, error.code, error=error.to_record())

    def cancelled(self) -> None:
        """The client cancelled the job while this run converted it: its files go."""
        self._storage.delete(self.job.id)
        log.info("job cancelled while running; its files are removed")

    def _finish(self, status: JobStatus, error_code: str | None = None,
                **fields: dict) -> bool:
        """Record the outcome if this run still owns the job. True if it did."""
        if self.job.input_url:  # what a presigned URL's query carries is not kept once done
            fields["input_url"] = shown(self.job.input_url)
        found = self._store.finish(self.job.id, self.job.owner, self.run_id, status, **fields)
        if found is not Ownership.OWNED:
            # Cancelled (or superseded) at the last moment: this run's output must not stay.
            if found is Ownership.CANCELLED:
                self._storage.delete(self.job.id)
            log.info("job finished but was no longer this run's; output discarded")
            return False
        if status is not JobStatus.SUCCEEDED:
            self._storage.discard_output(self.job.id)
        if self._delete_input_on_finish:
            self._storage.delete_input(self.job.id)
        self._announce_finished(self.job, status, error_code)
        return True


def _source(job: Job | NewJob) -> str:
    """What an Idempotency-Key replay must match: the upload's sha256, or the imported URL as
    shown (a URL signed anew for the same object is the same request)."""
    return f"url:{shown(job.input_url)}" if job.input_url else job.input_sha256


# Why a claim that does not own the job runs nothing (logged).
_NOT_RUN = {Claim.STALE: "it was queued again under a newer message",
            Claim.FINISHED: "it has finished already", Claim.GONE: "it is gone"}
