"""/uploads: direct uploads, for a client that puts its input into the object store itself.

    POST /uploads {"size_bytes": N, "filename": "orders.xml"}
      → 201 {"id", "part_size", "parts": [{"part_number", "url", "size_bytes"}], "expires_at"}
    (the client PUTs each part to its URL: the bytes never pass through the API)
    POST /jobs?upload_id=<id>&format=… → the job (api/submit.py)
    DELETE /uploads/<id> → 204: given up, its parts gone and its quota slot back

Only with s3:// storage; local storage answers 501 DIRECT_UPLOAD_UNAVAILABLE, and the client
sends the file in POST /jobs instead. The upload holds one of its key's MAX_ACTIVE_JOBS slots
from this answer until it becomes its job, is given up, or expires (UPLOAD_URL_TTL_SECONDS).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from common import errors
from common.errors import ServiceError
from jobs import is_job_id, upload_resource

from .auth import current_tenant
from .services import services
from .upload import DEFAULT_FILENAME, MAX_FILENAME_CHARS, safe_filename

bp = Blueprint("uploads", __name__)

MAX_BODY_BYTES = 4096  # {"size_bytes": …, "filename": …}


def _invalid(parameter: str, message: str) -> ServiceError:
    return ServiceError(errors.INVALID_REQUEST, message, {"parameter": parameter}, status=400)


def _announced() -> tuple[int, str]:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise _invalid("body", f"the body must be a JSON object of at most {MAX_BODY_BYTES} "
                       "bytes")
    body = request.get_json(silent=True) if request.content_length else None
    if not isinstance(body, dict):
        raise _invalid("body", 'send a JSON object: {"size_bytes": N, "filename": "…"}')
    size = body.get("size_bytes")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise _invalid("size_bytes", "size_bytes must be the file's size, a whole number ≥ 1")
    raw_name = body.get("filename")
    if raw_name is not None and not isinstance(raw_name, str):
        raise _invalid("filename", "filename must be a string")
    name = (safe_filename(raw_name) or DEFAULT_FILENAME)[:MAX_FILENAME_CHARS]
    return size, name


@bp.post("/uploads")
def open_upload() -> Response:
    size, filename = _announced()
    svc = services()
    tenant = current_tenant()
    opened = svc.lifecycle.open_upload(tenant.id, size, filename, tenant.max_active_jobs,
                                       svc.settings.max_upload_bytes)
    response = jsonify(upload_resource(opened))
    response.status_code = 201
    return response


@bp.delete("/uploads/<upload_id>")
def give_up_upload(upload_id: str) -> Response:
    if not is_job_id(upload_id):
        raise ServiceError(errors.UPLOAD_NOT_FOUND, "there is no upload with this id",
                           status=404)
    services().lifecycle.give_up_upload(upload_id, current_tenant().id)
    return Response(status=204)
