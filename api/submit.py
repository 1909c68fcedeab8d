"""Submitting a job (POST /jobs and the legacy /convert routes): validate, stream the upload to
storage and hand it to the lifecycle; and waiting for a job to finish (`?wait=N`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import redis
from flask import request

from common import errors
from common.errors import ServiceError
from common.jobs import Job, NewJob, new_job_id
from common.lifecycle import Submission
from common.logs import log_context
from common.storage import Storage
from converter import ConversionError, parse_format, parse_options

from .request_id import current_request_id
from .services import services
from .upload import check_request, drain, receive_upload

log = logging.getLogger(__name__)

NOT_OPTIONS = ("wait", "filename")  # query parameters that are not conversion options
MAX_IDEMPOTENCY_KEY_LENGTH = 255


def parse_wait(raw: str | None, ceiling: int) -> int:
    if raw in (None, ""):
        return 0
    if not raw.isdigit() or int(raw) > ceiling:
        raise ServiceError(errors.INVALID_REQUEST,
                           f"wait must be a whole number of seconds from 0 to {ceiling}",
                           {"parameter": "wait"}, status=400)
    return int(raw)


def validated(params: Mapping[str, str], fixed_format: str | None) -> tuple[str, dict]:
    """(format, options as given, normalized) or 400 INVALID_OPTION naming the option."""
    options = {k: v for k, v in params.items() if k not in NOT_OPTIONS and k != "format"}
    try:
        fmt = fixed_format or parse_format(params.get("format", "json"))
        normalized = parse_options(options).to_dict()
    except ConversionError as exc:
        raise ServiceError.from_conversion(exc, status=400) from None
    return fmt, {name: normalized[name] for name in options}


def _idempotency_key() -> str | None:
    key = (request.headers.get("Idempotency-Key") or "").strip() or None
    if key and len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ServiceError(errors.INVALID_REQUEST,
                           f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY_LENGTH} "
                           "characters", status=400)
    return key


def submit(fixed_format: str | None = None) -> Submission:
    svc = services()
    lifecycle = svc.lifecycle
    limit = svc.settings.max_upload_bytes
    query = request.args.to_dict()
    validated(query, fixed_format)  # fail before the upload when the query is already wrong
    idempotency_key = _idempotency_key()
    check_request(request, limit)  # refused before reading: the connection just closes
    try:
        lifecycle.check_queue()  # no point taking 300 MB we cannot queue
    except ServiceError:
        drain(request)
        raise

    job_id = new_job_id()

    def receive(storage: Storage) -> NewJob:
        try:
            upload = receive_upload(request, storage, job_id, limit)
        except ServiceError as exc:
            if exc.status == 413:
                drain(request)
            log.info("upload refused", extra={"error_code": exc.code})
            raise
        fmt, options = validated({**query, **upload.fields}, fixed_format)
        return NewJob(id=job_id, format=fmt, options=options, input_filename=upload.filename,
                      input_size=upload.size, input_sha256=upload.sha256,
                      request_id=current_request_id())

    with log_context(job_id=job_id):
        return lifecycle.submit(job_id, receive, idempotency_key)


def wait_until_finished(job: Job, seconds: float) -> Job:
    """Poll the job until it finishes or `seconds` pass; returns its latest state."""
    store = services().lifecycle.store
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
