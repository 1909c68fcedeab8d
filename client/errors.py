"""Every error the client raises: one type, `ApiError`, and two kinds of it.

    ApiError            the server refused (its status and its `{"error": {...}}` body)
    ├── JobFailed       the request went through, the job did not (`code` is the job's error)
    └── ServerUnreachable  no answer at all: refused connection, DNS, timeout (status None)

The CLI maps them to exit statuses (client/cli.py, converter/exit_status.py).
"""

from __future__ import annotations

from typing import Any

from converter.errors import error_body

# Codes made by the client itself (the server's own codes are in docs/api.md).
SERVER_UNREACHABLE = "SERVER_UNREACHABLE"
TIMEOUT = "TIMEOUT"
JOB_CANCELLED = "JOB_CANCELLED"
WAIT_TIMEOUT = "WAIT_TIMEOUT"
INVALID_RESPONSE = "INVALID_RESPONSE"
HTTP_ERROR = "HTTP_ERROR"


class ApiError(Exception):
    """A refused request: HTTP `status` (None when there was no HTTP answer), the error's
    `code` (UPPER_SNAKE), `message` and `details`; `retry_after` in seconds when the server
    said when to come back."""

    def __init__(self, status: int | None, code: str, message: str,
                 details: dict[str, Any] | None = None, retry_after: float | None = None) -> None:
        super().__init__(f"{code}: {message}" if status is None else
                         f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.retry_after = retry_after

    def envelope(self) -> dict[str, Any]:
        """The API's error shape, plus the HTTP status when there was one."""
        body = error_body(self.code, self.message, self.details)
        if self.status is not None:
            body["error"]["status"] = self.status
        return body


class JobFailed(ApiError):
    """The job finished without a result: `code` is the job's error code (XML_PARSE_ERROR, …,
    or JOB_CANCELLED), `details` its error's details (line, column, …), `job` the job."""

    def __init__(self, job: dict[str, Any]) -> None:
        error = dict(job.get("error") or {})
        if job.get("status") == "cancelled" and not error:
            error = {"code": JOB_CANCELLED, "message": "the job was cancelled"}
        code = str(error.pop("code", None) or "JOB_FAILED")
        message = str(error.pop("message", None) or f"the job {job.get('status', 'failed')}")
        # {"code", "message", "details": {...}}; jobs recorded by older servers had the
        # details beside the code ({"code", "message", "line", "column"}): both read the same.
        nested = error.pop("details", None)
        details = {**error, **(nested if isinstance(nested, dict) else {})}
        super().__init__(None, code, message, details)
        self.job = job

    def envelope(self) -> dict[str, Any]:
        """The API's error shape, with the job's id among the details."""
        return error_body(self.code, self.message, {**self.details, "job_id": self.job.get("id")})


class ServerUnreachable(ApiError):
    """No HTTP answer: the connection was refused or dropped, the name did not resolve, or
    the server did not answer within the timeout."""

    def __init__(self, url: str, reason: str, code: str = SERVER_UNREACHABLE) -> None:
        super().__init__(None, code, f"{url}: {reason}", {"url": url})


def error_from_body(status: int, body: Any, reason: str = "",
                    retry_after: float | None = None) -> ApiError:
    """The ApiError for an HTTP answer `status` whose JSON body is `body` (anything, when it
    was not JSON: a proxy's HTML page becomes HTTP_ERROR with the status's reason)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        details = error.get("details")
        return ApiError(status, error["code"], str(error.get("message") or reason),
                        details if isinstance(details, dict) else {}, retry_after)
    return ApiError(status, HTTP_ERROR, f"HTTP {status} {reason}".strip(), {}, retry_after)
