"""/health (liveness) and /health/ready (readiness: Redis answers, storage is writable)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify

from common import errors
from common.errors import ServiceError
from jobs import RETRY_AFTER_SECONDS

from .errors import error_response
from .services import services

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/health")
def alive() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/health/ready")
def ready() -> Response:
    """Each check named with its outcome; live workers are reported but never fail readiness
    (an API with no worker can still accept and queue jobs)."""
    checks, workers = services().jobs.readiness()
    failed = [name for name, check in checks.items() if not check["ok"]]
    if failed:
        log.warning("not ready", extra={"failed_checks": failed})
        return error_response(ServiceError(
            errors.NOT_READY, f"failed checks: {', '.join(failed)}",
            {"checks": checks, "workers": workers}, status=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)}))
    return jsonify({"status": "ready", "checks": checks, "workers": workers})
