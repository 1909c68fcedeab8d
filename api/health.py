"""The API's health: /health (liveness), /health/ready (readiness: Redis answers, storage is
writable), and the API image's container probe:

    python -m api.health     GET /health/ready on API_BIND's port; exit 0 on 200, else 1
"""

from __future__ import annotations

import logging
import sys

from flask import Blueprint, Response, jsonify

from common import errors
from common.errors import ServiceError
from common.probe import http_probe, local_host
from common.settings import settings_or_exit
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


def main() -> int:
    settings = settings_or_exit("api-health")
    host, _, port = settings.api_bind.rpartition(":")
    if settings.api_bind.startswith("unix:"):
        raise SystemExit("api.health: API_BIND is a unix socket; probe it another way")
    return http_probe("api", __name__, f"http://{local_host(host)}:{port}/health/ready")


if __name__ == "__main__":
    sys.exit(main())
