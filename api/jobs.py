"""/jobs: submit, list, read, download and cancel a client's jobs."""

from __future__ import annotations

import base64
import binascii
import json
import math
import unicodedata
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.wsgi import FileWrapper, wrap_file

from common import errors
from common.errors import ServiceError
from converter import FORMATS
from jobs import RETRY_AFTER_SECONDS, Job, JobStatus, is_job_id, job_resource

from .auth import current_tenant
from .params import invalid, whole_number
from .services import services
from .submit import parse_tag, submit

bp = Blueprint("jobs", __name__)

DOWNLOAD_BLOCK = 256 * 1024  # bytes a download reads and sends at a time


def job_response(job: Job) -> Response:
    """200 for a finished job; 202 (with Location and Retry-After) while it is pending."""
    response = jsonify(job_resource(job))
    if job.finished:
        response.status_code = 200
    else:
        response.status_code = 202
        response.headers["Location"] = f"/jobs/{job.id}"
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


# The characters kept in the ASCII `filename=` of Content-Disposition; any other becomes "_".
# Not: `"` and `\\` (quoted-string escapes), `%` (some clients percent-decode), `;` and the
# characters Windows refuses in a name.
_FALLBACK_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                            " !#$&'()+,-.=@[]^_`{}~")
# RFC 5987 attr-char: what `filename*` keeps unencoded.
_ATTR_CHARS = "!#$&+-.^_`|~"


def result_stem(job: Job) -> str:
    """The input's file name without its extension (what the result is named after)."""
    name = job.input_filename
    return name.rsplit(".", 1)[0] if "." in name else name


def result_filename(job: Job) -> str:
    return f"{result_stem(job) or 'result'}.{FORMATS[job.format].extension}"


def content_disposition(disposition: str, job: Job) -> str:
    """RFC 6266: an ASCII `filename` every client understands, and the name itself as
    `filename*` (RFC 8187, UTF-8) when the two differ (`заказы.json`: `result.json` and
    `заказы.json`)."""
    extension = FORMATS[job.format].extension
    stem = result_stem(job)
    ascii_stem = "".join(c if c in _FALLBACK_CHARS else "_" for c in unicodedata.normalize(
        "NFKD", stem).encode("ascii", "ignore").decode("ascii")).strip()
    if not ascii_stem.strip("._ "):
        ascii_stem = "result"
    fallback = f"{ascii_stem}.{extension}"
    name = f"{stem or 'result'}.{extension}"
    value = f'{disposition}; filename="{fallback}"'
    if name != fallback:
        value += f"; filename*=UTF-8''{quote(name, safe=_ATTR_CHARS)}"
    return value


def stream_result(job: Job, *, as_attachment: bool = True, redirect: bool = False) -> Response:
    """The result, streamed through the API; with `redirect` (GET /jobs/<id>/result under
    RESULT_DELIVERY=redirect) a 303 to a presigned URL of the object store instead."""
    fmt = FORMATS[job.format]
    svc = services()
    try:
        if redirect:
            url = svc.lifecycle.result_url(
                job, fmt.extension, content_type=fmt.content_type,
                content_disposition=content_disposition(
                    "attachment" if as_attachment else "inline", job),
                ttl_seconds=svc.settings.result_url_ttl_seconds)
            if url is not None:
                return Response(status=303, headers={"Location": url,
                                                     "Cache-Control": "no-store"})
        handle = svc.lifecycle.open_result(job, fmt.extension)
    except ServiceError as exc:
        if exc.code == errors.JOB_NOT_FINISHED:  # it will be, later: say when to ask again
            exc.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
        raise
    size = job.result["size_bytes"]
    # A Range request (a broken download resuming) gets a seekable wrapper, so the part is
    # read from its offset, not skipped through; a whole download keeps the server's own
    # wrapper (gunicorn may send a local file with sendfile).
    body = (FileWrapper(handle, DOWNLOAD_BLOCK) if "Range" in request.headers
            else wrap_file(request.environ, handle, DOWNLOAD_BLOCK))
    response = Response(body, direct_passthrough=True)
    # Exactly the format's type: Flask would append a second charset to "text/csv; …".
    response.headers["Content-Type"] = fmt.content_type
    response.headers["Content-Disposition"] = content_disposition(
        "attachment" if as_attachment else "inline", job)
    response.headers["Cache-Control"] = "private, no-cache"
    response.content_length = size
    # A job's result is written once and never changes, so its id and size name it; If-Range
    # with this tag (or Last-Modified) resumes only the same result.
    response.set_etag(f"{job.id}-{size}")
    if job.finished_at:
        response.last_modified = job.finished_at
    try:
        response.make_conditional(request, accept_ranges=True, complete_length=size)
    except RequestedRangeNotSatisfiable:
        handle.close()
        raise ServiceError(errors.RANGE_NOT_SATISFIABLE,
                           f"the range asked for lies outside the result ({size} bytes)",
                           {"size_bytes": size}, status=416,
                           headers={"Content-Range": f"bytes */{size}"}) from None
    return response


@bp.post("/jobs")
def create_job() -> Response:
    submitted = submit()
    job = submitted.job
    if submitted.wait:
        job = services().lifecycle.wait(job, submitted.wait)
    return job_response(job)


MAX_PAGE = 100


def _cursor(position: tuple[float, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode().rstrip("=")


def _position(cursor: str) -> tuple[float, str]:
    try:
        score, job_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        # A creation time: finite (NaN or an infinity would reach Redis, or page from nowhere).
        if (isinstance(score, (int, float)) and not isinstance(score, bool)
                and math.isfinite(score) and is_job_id(job_id)):
            return float(score), job_id
    except (ValueError, TypeError, binascii.Error, OverflowError):
        pass
    raise invalid("cursor", "cursor is not one this API gave")


def _status(raw: str | None) -> JobStatus | None:
    try:
        return None if raw is None else JobStatus(raw)
    except ValueError:
        raise invalid("status", f"status must be one of {', '.join(JobStatus)}") from None


def _page_size(raw: str | None) -> int:
    if raw is None:
        return 20
    return whole_number(raw, "limit", 1, MAX_PAGE, f"limit must be from 1 to {MAX_PAGE}")


@bp.get("/jobs")
def list_jobs() -> Response:
    """The caller's jobs, newest first; `status` and `tag` filter, `limit` (≤ 100) and the
    `next` link's cursor page. Jobs submitted meanwhile never shift a page."""
    status = _status(request.args.get("status"))
    tag = parse_tag(request.args.get("tag"))
    limit = _page_size(request.args.get("limit"))
    cursor = request.args.get("cursor")
    after = _position(cursor) if cursor else None
    jobs, last = services().lifecycle.page(current_tenant().id, limit, after, status, tag)
    following = None
    if last is not None:
        query = {"limit": limit, **({"status": status} if status else {}),
                 **({"tag": tag} if tag else {}), "cursor": _cursor(last)}
        following = f"/jobs?{urlencode(query)}"
    return jsonify({"jobs": [job_resource(job) for job in jobs], "next": following})


@bp.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    return jsonify(job_resource(services().lifecycle.find(job_id, current_tenant().id)))


@bp.get("/jobs/<job_id>/result")
def get_result(job_id: str) -> Response:
    svc = services()
    return stream_result(svc.lifecycle.find(job_id, current_tenant().id),
                         redirect=svc.settings.result_delivery == "redirect")


@bp.delete("/jobs/<job_id>")
def delete_job(job_id: str) -> Response:
    """Cancel a queued or running job (202, the job as it is now), or delete a finished one
    with its files (204)."""
    job = services().lifecycle.cancel_or_delete(job_id, current_tenant().id)
    if job is None:
        response = Response(status=204)
        del response.headers["Content-Type"]  # no body, so no type (Flask's default is HTML)
        return response
    response = jsonify(job_resource(job))
    response.status_code = 202
    return response
