"""The API's health: /health (liveness), /health/ready (readiness: Redis answers, storage is
writable; the checks and live workers for operators only), and the API image's container probe:

    python -m api.health     GET /health/ready on API_BIND's port; exit 0 on 200, else 1
"""

from __future__ import annotations

import logging
import sys

from flask import Blueprint, Response, jsonify, request

from common import errors
from common.errors import ServiceError
from common.probe import http_probe, local_host
from common.settings import settings_or_exit
from jobs import RETRY_AFTER_SECONDS

from .errors import error_response
from .metrics import is_operator
from .services import services

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/health")
def alive() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/health/ready")
def ready() -> Response:
    """200 or 503 for whoever asks (what probes read); each check named with its outcome and
    the live workers (host names, process ids) for operators only: METRICS_TOKEN as a bearer
    token, or anyone in development without one (as GET /metrics). Live workers never fail
    readiness (an API with no worker can still accept and queue jobs)."""
    svc = services()
    checks, workers = svc.jobs.readiness()
    failed = [name for name, check in checks.items() if not check["ok"]]
    shown = is_operator(svc.settings, request.headers.get("Authorization"))
    if failed:
        log.warning("not ready", extra={"failed_checks": failed})
        return error_response(ServiceError(
            errors.NOT_READY, f"failed checks: {', '.join(failed)}" if shown else "not ready",
            {"checks": checks, "workers": workers} if shown else {}, status=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)}))
    if not shown:
        return jsonify({"status": "ready"})
    return jsonify({"status": "ready", "checks": checks, "workers": workers})


def main() -> int:
    settings = settings_or_exit("api-health")
    host, _, port = settings.api_bind.rpartition(":")
    if settings.api_bind.startswith("unix:"):
        raise SystemExit("api.health: API_BIND is a unix socket; probe it another way")
    return http_probe("api", __name__, f"http://{local_host(host)}:{port}/health/ready")


if __name__ == "__main__":
    sys.exit(main())
