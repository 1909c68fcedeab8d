"""Every error code the service answers with, in one place.

The converter's own codes (XML_PARSE_ERROR, XML_SECURITY_VIOLATION, INVALID_OPTION, …) live in
converter/errors.py and reach clients unchanged inside a failed job's `error`. The codes here are
the service's: HTTP-level refusals and the ways a job can fail outside the converter.
"""

from __future__ import annotations

# Requests
INVALID_OPTION = "INVALID_OPTION"  # same name as the converter's; raised there, relayed here
INVALID_REQUEST = "INVALID_REQUEST"
MISSING_FILE = "MISSING_FILE"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
INVALID_GZIP = "INVALID_GZIP"
IDEMPOTENCY_KEY_MISMATCH = "IDEMPOTENCY_KEY_MISMATCH"
NOT_FOUND = "NOT_FOUND"
JOB_NOT_FOUND = "JOB_NOT_FOUND"
JOB_EXPIRED = "JOB_EXPIRED"
JOB_NOT_FINISHED = "JOB_NOT_FINISHED"
RESULT_UNAVAILABLE = "RESULT_UNAVAILABLE"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
HTTP_ERROR = "HTTP_ERROR"

# Dependencies
QUEUE_UNAVAILABLE = "QUEUE_UNAVAILABLE"
NOT_READY = "NOT_READY"

# Jobs that fail outside the converter
TIME_LIMIT_EXCEEDED = "TIME_LIMIT_EXCEEDED"
INPUT_MISSING = "INPUT_MISSING"
WORKER_LOST = "WORKER_LOST"
INTERNAL_ERROR = "INTERNAL_ERROR"


class ServiceError(Exception):
    """A refusal the API turns into `{"error": {"code", "message", "details"}}`."""

    def __init__(self, code: str, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "details": self.details}


class StorageError(Exception):
    """Storage refused an operation (bad job id, missing file)."""
