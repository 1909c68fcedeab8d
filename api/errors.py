"""Every error the API answers is `{"error": {"code", "message", "details"}}`: its own refusals
(common.errors.ServiceError, with their status), Werkzeug's HTTP errors (404, 405, …), Redis
outages (503 with Retry-After, one log line) and unexpected exceptions (500, logged, never
shown)."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from common import errors
from common.errors import ServiceError
from jobs import StoreUnavailable, queue_unavailable

log = logging.getLogger(__name__)

_CODE_BY_HTTP_STATUS = {
    400: errors.INVALID_REQUEST,
    404: errors.NOT_FOUND,
    405: errors.METHOD_NOT_ALLOWED,
    413: errors.PAYLOAD_TOO_LARGE,
    415: errors.UNSUPPORTED_MEDIA_TYPE,
}


def error_response(error: ServiceError) -> Response:
    response = jsonify(error.envelope())
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> Response:
        return error_response(exc)

    @app.errorhandler(StoreUnavailable)
    def _redis_down(exc: StoreUnavailable) -> Response:
        log.warning("job store unavailable: %s: %s", type(exc).__name__, exc)
        return error_response(queue_unavailable())

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        allowed = getattr(exc, "valid_methods", None)
        headers = {"Allow": ", ".join(allowed)} if allowed else {}
        return error_response(ServiceError(
            _CODE_BY_HTTP_STATUS.get(status, errors.HTTP_ERROR), exc.description or exc.name,
            status=status, headers=headers))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(ServiceError(errors.INTERNAL_ERROR,
                                           "the server failed unexpectedly"))
