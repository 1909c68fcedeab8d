"""Submitting a job (POST /jobs and the legacy /convert routes): validate, stream the upload to
storage and hand it to the lifecycle — or, with `upload_id`, make the job of a direct upload
(api/uploads.py) the client put into the bucket itself; and waiting for a job to finish
(`wait`, a query parameter or a form field: a form field is known only after the upload,
which is fine, as the waiting comes after it)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from flask import request

from common import errors
from common.errors import ServiceError
from common.logs import log_context
from common.outbound_urls import INPUT_URL, check_url, shown
from converter import ConversionError, parse_format, parse_options
from jobs import Job, NewJob, Storage, is_job_id, new_job_id
from optionspec import NOT_OPTIONS

from .auth import current_tenant
from .params import invalid, naming_the_parameter, whole_number
from .request_id import current_request_id
from .services import services
from .upload import check_request, drain, receive_upload

log = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_METADATA_BYTES = 4096
TAG_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def parse_tag(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not 1 <= len(raw) <= 64 or not set(raw) <= TAG_CHARS:
        raise invalid("tag", "tag must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
    return raw


def parse_metadata(raw: str | None) -> dict | None:
    if raw is None:
        return None
    if len(raw.encode()) > MAX_METADATA_BYTES:
        raise invalid("metadata", f"metadata must be at most {MAX_METADATA_BYTES} bytes")
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise invalid("metadata", "metadata must be a JSON object")
    return value


@dataclass(frozen=True)
class Extras:
    """What a client may attach to a job besides its options."""

    tag: str | None
    metadata: dict | None
    webhook_url: str | None


def parse_extras(params: Mapping[str, str], allow_private: bool) -> Extras:
    webhook_url = params.get("webhook_url")
    return Extras(parse_tag(params.get("tag")), parse_metadata(params.get("metadata")),
                  check_url(webhook_url, allow_private) if webhook_url is not None else None)


def parse_wait(raw: str | None, ceiling: int) -> int:
    if raw in (None, ""):
        return 0
    return whole_number(raw, "wait", 0, ceiling,
                        f"wait must be a whole number of seconds from 0 to {ceiling}")


def validated(params: Mapping[str, str], fixed_format: str | None) -> tuple[str, dict]:
    """(format, options as given, normalized) or 400 INVALID_OPTION naming the option."""
    options = {k: v for k, v in params.items() if k not in NOT_OPTIONS}
    try:
        fmt = fixed_format or parse_format(params.get("format", "json"))
        normalized = parse_options(options).to_dict()
    except ConversionError as exc:
        raise naming_the_parameter(ServiceError.from_conversion(exc, status=400)) from None
    return fmt, {name: normalized[name] for name in options}


def _idempotency_key() -> str | None:
    key = (request.headers.get("Idempotency-Key") or "").strip() or None
    if key and len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise invalid("Idempotency-Key", f"Idempotency-Key is longer than "
                      f"{MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    return key


@dataclass(frozen=True)
class Submitted:
    job: Job
    created: bool  # False: an Idempotency-Key replay of an earlier job
    wait: int | None  # seconds to wait for the job (`wait`, query or form field); None: not given


def submit(fixed_format: str | None = None) -> Submitted:
    svc = services()
    lifecycle = svc.lifecycle
    tenant = current_tenant()
    limit = svc.settings.max_upload_bytes
    max_wait = svc.settings.max_wait_seconds
    allow_private = svc.settings.allow_private_addresses
    query = request.args.to_dict()
    if INPUT_URL in query:  # no upload: the worker fetches the input
        if fixed_format is not None:
            raise invalid(INPUT_URL, "input_url is taken by POST /jobs only")
        return _submit_import(query)
    if "upload_id" in query and fixed_format is None:  # POST /jobs only, not /convert
        return submit_upload(query.pop("upload_id"), query, fixed_format)
    # Fail before the upload when the query is already wrong.
    validated(query, fixed_format)
    extras_in_query = parse_extras(query, allow_private)
    parse_wait(query.get("wait"), max_wait)
    idempotency_key = _idempotency_key()
    check_request(request, limit)  # refused before reading: the connection just closes
    job_id = new_job_id()
    try:
        lifecycle.check_queue()  # no point taking 300 MB we cannot queue
        lifecycle.check_room(request.content_length or 0)  # nor a body we have no room for
        with lifecycle.reserve(tenant.id, job_id, tenant.max_active_jobs):  # 429 before reading
            return _receive_and_submit(job_id, query, fixed_format, extras_in_query,
                                       idempotency_key)
    except ServiceError as exc:
        if exc.status in (413, 429, 503, 507):  # refused with a body still coming
            drain(request)
        raise


def _receive_and_submit(job_id: str, query: dict[str, str], fixed_format: str | None,
                        extras_in_query: Extras, idempotency_key: str | None) -> Submitted:
    svc = services()
    settings = svc.settings
    tenant = current_tenant()
    wait: list[int | None] = [None]  # known once the form's fields are

    def receive(storage: Storage) -> NewJob:
        try:
            upload = receive_upload(request, storage, job_id, settings.max_upload_bytes,
                                    max_gzip_members=settings.max_gzip_members,
                                    max_form_parts=settings.max_form_parts)
        except ServiceError as exc:
            log.info("upload refused", extra={"error_code": exc.code})
            raise
        params = {**query, **upload.fields}
        if INPUT_URL in params:
            raise invalid(INPUT_URL, "send either a file or an input_url, not both")
        fmt, options = validated(params, fixed_format)
        # Checked again only if the form changed them: a webhook URL check resolves its host.
        extras = (parse_extras(params, settings.allow_private_addresses)
                  if {"tag", "metadata", "webhook_url"} & upload.fields.keys()
                  else extras_in_query)
        if "wait" in params:
            wait[0] = parse_wait(params["wait"], settings.max_wait_seconds)
        return NewJob(id=job_id, format=fmt, options=options, input_filename=upload.filename,
                      input_size=upload.size, input_sha256=upload.sha256,
                      request_id=current_request_id(), owner=tenant.id, tag=extras.tag,
                      metadata=extras.metadata, webhook_url=extras.webhook_url)

    with log_context(job_id=job_id):
        submission = svc.lifecycle.submit(job_id, receive, idempotency_key,
                                          tenant.max_active_jobs)
    return Submitted(submission.job, submission.created, wait[0])


# -- POST /jobs?input_url=…: a job whose input the worker fetches (worker/fetch.py)


def _import_filename(url: str) -> str:
    """The name the job's input goes by: the URL path's last segment, else input.xml."""
    name = unquote(urlsplit(url).path.rstrip("/").rpartition("/")[2])
    return name[:255] if name and name.isprintable() else "input.xml"


def _submit_import(query: dict[str, str]) -> Submitted:
    """Validate everything a job needs but its input (the URL checked as webhook URLs are,
    400 INVALID_INPUT_URL), and queue it without a body: quota, Idempotency-Key, tag, metadata
    and webhook as for an upload. A body beside input_url is refused (400): it would be
    ignored."""
    svc = services()
    settings = svc.settings
    tenant = current_tenant()
    if request.content_length or request.headers.get("Transfer-Encoding"):
        drain(request)
        raise invalid(INPUT_URL, "send either a file or an input_url, not both")
    fmt, options = validated(query, None)
    extras = parse_extras(query, settings.allow_private_addresses)
    wait = parse_wait(query.get("wait"), settings.max_wait_seconds)
    url = check_url(query[INPUT_URL], settings.allow_private_addresses, INPUT_URL)
    idempotency_key = _idempotency_key()
    new = NewJob(id=new_job_id(), format=fmt, options=options,
                 input_filename=_import_filename(url), input_size=0, input_sha256="",
                 input_url=url, request_id=current_request_id(), owner=tenant.id,
                 tag=extras.tag, metadata=extras.metadata, webhook_url=extras.webhook_url)
    with log_context(job_id=new.id):
        submission = svc.lifecycle.submit_import(new, idempotency_key, tenant.max_active_jobs)
    log.info("import queued", extra={"job_id": new.id, "input_url": shown(url)})
    return Submitted(submission.job, submission.created, wait or None)


# -- POST /jobs?upload_id=…: the job of a direct upload (POST /uploads)


def submit_upload(upload_id: str, query: dict[str, str], fixed_format: str | None) -> Submitted:
    """POST /jobs?upload_id=…: the job of a direct upload, options in the query, no body. The
    upload id is single-use and becomes the job's id: a repeated request answers the same job
    (so no Idempotency-Key is needed, and none is looked at)."""
    svc = services()
    settings = svc.settings
    tenant = current_tenant()
    fmt, options = validated(query, fixed_format)
    extras = parse_extras(query, settings.allow_private_addresses)
    wait = parse_wait(query.get("wait"), settings.max_wait_seconds)
    if request.content_length or "chunked" in (request.headers.get("Transfer-Encoding") or
                                                "").lower():
        raise ServiceError(errors.INVALID_REQUEST, "with upload_id, send no body: the file is "
                           "the upload's", {"parameter": "upload_id"}, status=400,
                           headers={"Connection": "close"})
    if not is_job_id(upload_id):
        raise ServiceError(errors.UPLOAD_NOT_FOUND, "there is no upload with this id",
                           status=404)
    svc.lifecycle.check_queue()

    def describe(size: int, filename: str) -> NewJob:
        return NewJob(id=upload_id, format=fmt, options=options, input_filename=filename,
                      input_size=size, input_sha256="", request_id=current_request_id(),
                      owner=tenant.id, tag=extras.tag, metadata=extras.metadata,
                      webhook_url=extras.webhook_url)

    with log_context(job_id=upload_id):
        submission = svc.lifecycle.submit_upload(upload_id, tenant.id, describe,
                                                 tenant.max_active_jobs,
                                                 settings.max_upload_bytes)
    return Submitted(submission.job, submission.created, wait)
