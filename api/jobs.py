"""/jobs: submit, read, download and cancel jobs."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, send_file

from common import errors
from common.errors import StorageError
from common.jobs import QUEUED, RUNNING, SUCCEEDED, Job
from converter import FORMATS

from .errors import ApiError
from .services import services
from .submit import RETRY_AFTER_SECONDS, parse_wait, submit, wait_until_finished

bp = Blueprint("jobs", __name__)


def job_response(job: Job) -> Response:
    """200 for a finished job; 202 (with Location and Retry-After) while it is pending."""
    response = jsonify(job.to_resource())
    if job.finished:
        response.status_code = 200
    else:
        response.status_code = 202
        response.headers["Location"] = f"/jobs/{job.id}"
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def find_job(job_id: str) -> Job:
    """The job, or 404 (never existed) / 410 (expired or deleted)."""
    store = services().store
    job = store.get(job_id)
    if job is not None:
        return job
    if store.existed(job_id):
        raise ApiError(410, errors.JOB_EXPIRED, "this job has expired or was deleted",
                       {"job_id": job_id})
    raise ApiError(404, errors.JOB_NOT_FOUND, "there is no job with this id")


def result_filename(job: Job) -> str:
    stem = job.input_filename.rsplit(".", 1)[0] if "." in job.input_filename else (
        job.input_filename)
    return f"{stem or 'result'}.{FORMATS[job.format].extension}"


def stream_result(job: Job, *, as_attachment: bool = True) -> Response:
    if job.status != SUCCEEDED:
        details = {"status": job.status}
        if job.error:
            details["error"] = job.error
        raise ApiError(409, errors.JOB_NOT_FINISHED if job.status in (QUEUED, RUNNING)
                       else errors.RESULT_UNAVAILABLE,
                       f"the job is {job.status}; a result exists only once it has succeeded",
                       details)
    fmt = FORMATS[job.format]
    try:
        handle = services().storage.open_result(job.id, fmt.extension)
    except StorageError:
        raise ApiError(410, errors.JOB_EXPIRED, "the result is no longer available") from None
    response = send_file(handle, mimetype=fmt.content_type, as_attachment=as_attachment,
                         download_name=result_filename(job), conditional=False, etag=False,
                         max_age=0)
    # Exactly the format's type: send_file would append a second charset to "text/csv; …".
    response.headers["Content-Type"] = fmt.content_type
    if job.result and job.result.get("size_bytes") is not None:
        response.content_length = job.result["size_bytes"]
    return response


@bp.post("/jobs")
def create_job() -> Response:
    wait = parse_wait(request.args.get("wait"), services().settings.max_wait_seconds)
    job = submit().job
    return job_response(wait_until_finished(job, wait) if wait else job)


@bp.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    return jsonify(find_job(job_id).to_resource())


@bp.get("/jobs/<job_id>/result")
def get_result(job_id: str) -> Response:
    return stream_result(find_job(job_id))


@bp.delete("/jobs/<job_id>")
def delete_job(job_id: str) -> Response:
    """Cancel a queued or running job (202, the job as it is now), or delete a finished one
    with its files (204). A running job's worker notices within a second and removes its
    files; a queued job's files go now."""
    svc = services()
    find_job(job_id)
    before = svc.store.discard(job_id)
    if before is None:
        find_job(job_id)  # expired meanwhile: 404/410
    if before in (QUEUED, RUNNING):
        if before == QUEUED:
            svc.storage.delete(job_id)
        job = svc.store.get(job_id)
        if job is None:
            return Response(status=204)
        response = jsonify(job.to_resource())
        response.status_code = 202
        return response
    svc.storage.delete(job_id)
    return Response(status=204)
