"""The HTTP API: a Flask app factory. Nothing happens at import time.

    gunicorn -c gunicorn_config.py 'api:create_app()'
"""

from __future__ import annotations

from flask import Flask

from common import tracing
from common.logs import configure_logging
from common.settings import Settings, settings_or_exit


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or settings_or_exit("api")
    configure_logging("api", settings.log_level)

    from . import contract, events, health, jobs, legacy, page, uploads
    from .auth import register_auth
    from .errors import register_error_handlers
    from .limits import register_limits
    from .metrics import register_metrics
    from .request_id import register_request_id
    from .services import build_services

    app = Flask(__name__, static_folder=None)
    app.json.sort_keys = False  # keep the job resource's documented field order
    app.extensions["xmlconv"] = build_services(settings)
    register_request_id(app)
    # Traces when OTEL_EXPORTER_OTLP_ENDPOINT is set (this runs in each gunicorn process, after
    # its fork): each request's span starts after its request id is known, before auth.
    if tracing.setup(settings, "api"):
        tracing.instrument_flask(app)
    register_error_handlers(app)
    register_auth(app)
    register_limits(app)  # after auth: the client decides the limit; a 401 is never counted
    for blueprint in (jobs.bp, events.bp, uploads.bp, legacy.bp, health.bp, page.bp, contract.bp):
        app.register_blueprint(blueprint)
    register_metrics(app)  # measures every request; answers GET /metrics before the app
    return app
