"""The synchronous routes of the first version, kept for existing clients:

    POST /convert/xml-to-json | xml-to-csv | xml-to-string | xml-to-yaml

They submit a job and wait for it (LEGACY_WAIT_SECONDS, or `wait=N` as a query parameter or a
form field): a job that finishes in time answers with the converted document itself (or its
error: 422, `{"error": {"code", "message", "details"}}`, the job's error plus its id in
`details.job_id`); a slower one answers 202 with the job, to be followed like any other.
"""

from __future__ import annotations

from flask import Blueprint, Response

from common.errors import ServiceError
from jobs import JobStatus

from .errors import error_response
from .jobs import job_response, stream_result
from .services import services
from .submit import submit

bp = Blueprint("legacy", __name__)

LEGACY_FORMATS = {"xml-to-json": "json", "xml-to-csv": "csv", "xml-to-string": "text",
                  "xml-to-yaml": "yaml"}


@bp.post('/convert/<any("xml-to-json", "xml-to-csv", "xml-to-string", "xml-to-yaml"):route>')
def convert_now(route: str) -> Response:
    submitted = submit(fixed_format=LEGACY_FORMATS[route])
    wait = services().settings.legacy_wait_seconds if submitted.wait is None else submitted.wait
    job = services().lifecycle.wait(submitted.job, wait)
    if job.status is JobStatus.SUCCEEDED:
        return stream_result(job, as_attachment=False)
    if job.status is JobStatus.FAILED and job.error:
        error = ServiceError.from_record(job.error, status=422)
        error.details["job_id"] = job.id
        return error_response(error)
    return job_response(job)
