"""Every error code the service answers with, and the one type that carries an error.

The converter's own codes (XML_PARSE_ERROR, XML_SECURITY_VIOLATION, INVALID_OPTION, …) live in
converter/errors.py and reach clients unchanged, inside a failed job's `error` or a 400. The codes
here are the service's: HTTP-level refusals and the ways a job can fail outside the converter.

`ServiceError` is the only way an error is built, and it has one shape everywhere:
`{"code", "message", "details"}`. The API answers it as `{"error": …}` with its status (built by
`error_body`, the converter's, which the commands print too), and a failed job records it as
its `error` (a parse error's line and column are in `details`).
"""

from __future__ import annotations

from typing import Any

from converter.errors import error_body

# Requests
INVALID_REQUEST = "INVALID_REQUEST"
MISSING_FILE = "MISSING_FILE"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
REQUEST_TIMEOUT = "REQUEST_TIMEOUT"  # the client sent nothing for API_CLIENT_TIMEOUT
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
INVALID_GZIP = "INVALID_GZIP"
TOO_MANY_GZIP_MEMBERS = "TOO_MANY_GZIP_MEMBERS"  # 413: MAX_GZIP_MEMBERS
TOO_MANY_FORM_PARTS = "TOO_MANY_FORM_PARTS"  # 413: MAX_FORM_PARTS
IDEMPOTENCY_KEY_MISMATCH = "IDEMPOTENCY_KEY_MISMATCH"
INVALID_WEBHOOK_URL = "INVALID_WEBHOOK_URL"
INVALID_INPUT_URL = "INVALID_INPUT_URL"  # 400: input_url refused (common/outbound_urls.py)
UNAUTHENTICATED = "UNAUTHENTICATED"
RATE_LIMITED = "RATE_LIMITED"
QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
TOO_MANY_STREAMS = "TOO_MANY_STREAMS"  # 429: EVENTS_MAX_PER_KEY event streams of one key
NOT_FOUND = "NOT_FOUND"
JOB_NOT_FOUND = "JOB_NOT_FOUND"
JOB_EXPIRED = "JOB_EXPIRED"
JOB_NOT_FINISHED = "JOB_NOT_FINISHED"
RESULT_UNAVAILABLE = "RESULT_UNAVAILABLE"
RANGE_NOT_SATISFIABLE = "RANGE_NOT_SATISFIABLE"  # a download's Range lies outside the result
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
# Direct uploads (POST /uploads, then POST /jobs?upload_id=…)
DIRECT_UPLOAD_UNAVAILABLE = "DIRECT_UPLOAD_UNAVAILABLE"  # 501: storage is not an object store
UPLOAD_NOT_FOUND = "UPLOAD_NOT_FOUND"  # 404: unknown, or another key's
UPLOAD_EXPIRED = "UPLOAD_EXPIRED"  # 410: past UPLOAD_URL_TTL_SECONDS, its parts are gone
UPLOAD_INCOMPLETE = "UPLOAD_INCOMPLETE"  # 409: parts missing; the upload stays open
HTTP_ERROR = "HTTP_ERROR"

# Dependencies
QUEUE_UNAVAILABLE = "QUEUE_UNAVAILABLE"
NOT_READY = "NOT_READY"
INSUFFICIENT_STORAGE = "INSUFFICIENT_STORAGE"  # 507: free space under STORAGE_MIN_FREE_BYTES
STREAMS_BUSY = "STREAMS_BUSY"  # 503: EVENTS_MAX_STREAMS event streams in this API process

# Jobs that fail outside the converter
TIME_LIMIT_EXCEEDED = "TIME_LIMIT_EXCEEDED"
MEMORY_LIMIT_EXCEEDED = "MEMORY_LIMIT_EXCEEDED"  # the run passed WORKER_MEMORY_LIMIT_MB
INPUT_MISSING = "INPUT_MISSING"
INPUT_FETCH_FAILED = "INPUT_FETCH_FAILED"  # input_url not fetched: details.reason (worker/fetch.py)
WORKER_LOST = "WORKER_LOST"
INTERNAL_ERROR = "INTERNAL_ERROR"

# API keys (xmlconv-admin, jobs/admin.py)
KEY_NAME_TAKEN = "KEY_NAME_TAKEN"
KEY_NOT_FOUND = "KEY_NOT_FOUND"


class ServiceError(Exception):
    """An error with a stable code, a message for a person and details; `status` and `headers`
    are what the HTTP layer answers it with (500 unless said otherwise)."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None, *,
                 status: int = 500, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.status = status
        self.headers = headers or {}

    @classmethod
    def from_conversion(cls, exc: Any, status: int = 500) -> ServiceError:
        """The converter's ConversionError (its position or option become details)."""
        return cls(exc.code, exc.message, exc.details, status=status)

    @classmethod
    def from_record(cls, error: dict[str, Any], status: int = 500) -> ServiceError:
        """A failed job's recorded error (`to_record()`), back as an error (the legacy routes
        answer it)."""
        return cls(error["code"], error["message"], error.get("details"), status=status)

    def envelope(self) -> dict[str, Any]:
        """The HTTP body: `{"error": {"code", "message", "details"}}`."""
        return error_body(self.code, self.message, self.details)

    def to_record(self) -> dict[str, Any]:
        """A failed job's `error`: the same shape as the HTTP body's `error`."""
        return self.envelope()["error"]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class StorageError(Exception):
    """Storage refused an operation (bad job id, missing file)."""


class StorageFull(StorageError):
    """Storage has too little free space left to take more bytes (STORAGE_MIN_FREE_BYTES)."""

    def __init__(self, free_bytes: int, min_free_bytes: int) -> None:
        super().__init__(f"{free_bytes} bytes free, {min_free_bytes} kept free")
        self.free_bytes = free_bytes
        self.min_free_bytes = min_free_bytes
