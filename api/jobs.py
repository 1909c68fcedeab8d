"""/jobs: submit, read, download and cancel jobs."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, send_file

from common.jobs import Job
from common.lifecycle import RETRY_AFTER_SECONDS
from converter import FORMATS

from .resources import job_resource
from .services import services
from .submit import parse_wait, submit, wait_until_finished

bp = Blueprint("jobs", __name__)


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


def result_filename(job: Job) -> str:
    stem = job.input_filename.rsplit(".", 1)[0] if "." in job.input_filename else (
        job.input_filename)
    return f"{stem or 'result'}.{FORMATS[job.format].extension}"


def stream_result(job: Job, *, as_attachment: bool = True) -> Response:
    fmt = FORMATS[job.format]
    handle = services().lifecycle.open_result(job, fmt.extension)
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
    return jsonify(job_resource(services().lifecycle.find(job_id)))


@bp.get("/jobs/<job_id>/result")
def get_result(job_id: str) -> Response:
    return stream_result(services().lifecycle.find(job_id))


@bp.delete("/jobs/<job_id>")
def delete_job(job_id: str) -> Response:
    """Cancel a queued or running job (202, the job as it is now), or delete a finished one
    with its files (204)."""
    job = services().lifecycle.cancel_or_delete(job_id)
    if job is None:
        return Response(status=204)
    response = jsonify(job_resource(job))
    response.status_code = 202
    return response
