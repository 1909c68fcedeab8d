"""Submitting a job (POST /jobs and the legacy /convert routes): validate, stream the upload to
storage, record the job, queue it; and waiting for a job to finish (`?wait=N`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import redis
from flask import Request, request

from common import errors
from common.jobs import Job, NewJob, new_job_id
from common.logs import log_context
from converter import ConversionError, parse_format, parse_options

from .errors import ApiError
from .request_id import current_request_id
from .services import Services, services
from .upload import check_request, drain, receive_upload

log = logging.getLogger(__name__)

NOT_OPTIONS = ("wait", "filename")  # query parameters that are not conversion options
RETRY_AFTER_SECONDS = 5


@dataclass
class Submission:
    job: Job
    created: bool  # False: an Idempotency-Key replay of an earlier job


def queue_unavailable() -> ApiError:
    return ApiError(503, errors.QUEUE_UNAVAILABLE, "the job queue is unavailable; retry later",
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def parse_wait(raw: str | None, ceiling: int) -> int:
    if raw in (None, ""):
        return 0
    if not raw.isdigit() or int(raw) > ceiling:
        raise ApiError(400, errors.INVALID_REQUEST,
                       f"wait must be a whole number of seconds from 0 to {ceiling}",
                       {"parameter": "wait"})
    return int(raw)


def validated(params: Mapping[str, str], fixed_format: str | None) -> tuple[str, dict]:
    """(format, options as given, normalized) or 400 INVALID_OPTION naming the option."""
    options = {k: v for k, v in params.items() if k not in NOT_OPTIONS and k != "format"}
    try:
        fmt = fixed_format or parse_format(params.get("format", "json"))
        normalized = parse_options(options).to_dict()
    except ConversionError as exc:
        raise ApiError(400, errors.INVALID_OPTION, exc.message,
                       {"option": exc.option}) from None
    return fmt, {name: normalized[name] for name in options}


def submit(fixed_format: str | None = None) -> Submission:
    svc = services()
    limit = svc.settings.max_upload_bytes
    query = request.args.to_dict()
    validated(query, fixed_format)  # fail before the upload when the query is already wrong
    check_request(request, limit)  # refused before reading: the connection just closes
    try:
        svc.redis.ping()  # no point taking 300 MB we cannot queue
    except redis.RedisError:
        drain(request)
        raise queue_unavailable() from None

    job_id = new_job_id()
    with log_context(job_id=job_id):
        try:
            upload = receive_upload(request, svc.storage, job_id, limit)
        except ApiError as exc:
            if exc.status == 413:
                drain(request)
            log.info("upload refused", extra={"error_code": exc.code})
            raise
        try:
            fmt, options = validated({**query, **upload.fields}, fixed_format)
            return _record_and_queue(svc, request, NewJob(
                id=job_id, format=fmt, options=options, input_filename=upload.filename,
                input_size=upload.size, input_sha256=upload.sha256,
                request_id=current_request_id()))
        except BaseException:
            svc.storage.delete(job_id)
            raise


def _record_and_queue(svc: Services, req: Request, new: NewJob) -> Submission:
    idempotency_key = (req.headers.get("Idempotency-Key") or "").strip() or None
    if idempotency_key and len(idempotency_key) > 255:
        raise ApiError(400, errors.INVALID_REQUEST, "Idempotency-Key is longer than 255 characters")
    try:
        job_id, created = svc.store.create(new, idempotency_key)
        if not created:
            return _replay(svc, job_id, new)
        job = svc.store.get(new.id)  # as queued: read before a worker can change it
        try:
            svc.publish(new.id, new.request_id)
        except Exception:
            log.exception("could not queue the job")
            svc.store.forget(new.id)
            raise queue_unavailable() from None
    except redis.RedisError as exc:
        log.warning("job store unavailable: %s", exc)
        raise queue_unavailable() from None
    if job is None:  # Redis lost it between two calls; treat as an outage
        raise queue_unavailable()
    log.info("job queued", extra={"format": new.format, "input_bytes": new.input_size})
    return Submission(job, created=True)


def _replay(svc: Services, job_id: str, new: NewJob) -> Submission:
    """An Idempotency-Key seen before: the earlier job, if this is the same request."""
    svc.storage.delete(new.id)
    earlier = svc.store.get(job_id)
    if earlier is None:
        raise ApiError(410, errors.JOB_EXPIRED, "the job for this Idempotency-Key has expired")
    if (earlier.input_sha256, earlier.format, earlier.options) != (
            new.input_sha256, new.format, new.options):
        raise ApiError(422, errors.IDEMPOTENCY_KEY_MISMATCH,
                       "this Idempotency-Key was used for a different request",
                       {"job_id": job_id})
    log.info("idempotent replay", extra={"replayed_job_id": job_id})
    return Submission(earlier, created=False)


def wait_until_finished(job: Job, seconds: float) -> Job:
    """Poll the job until it finishes or `seconds` pass; returns its latest state."""
    store = services().store
    deadline = time.monotonic() + seconds
    pause = 0.05
    while not job.finished and time.monotonic() < deadline:
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 1.5, 0.5)
        try:
            latest = store.get(job.id)
        except redis.RedisError:
            break  # answer with what we have: the job is queued
        if latest is None:
            break
        job = latest
    return job
