"""common/tracing.py: off (nothing of OpenTelemetry loaded, no cost) unless
OTEL_EXPORTER_OTLP_ENDPOINT is set; on, a log line written inside a span carries its ids. Each
case runs in a fresh interpreter: what a process imports is the point. The whole path, across real
processes to a real receiver: tests/integration/test_tracing.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from common.settings import SettingsError, load_settings
from testkit import REPO

# The API's app built and asked a question, the worker's and the webhooks worker's modules
# loaded and their start-up signals sent as Celery sends them, a webhook attempt made (to a job
# that does not exist: it logs, sends nothing), a line logged; then: what got imported.
_EVERY_ROLE = """
import json, logging, sys
from api import create_app
from celery import signals
import worker.app, worker.webhooks_app
from worker import webhooks

app = create_app()
assert app.test_client().get("/health").status_code == 200
signals.worker_init.send(sender=None)
signals.worker_process_init.send(sender=None)

class NoJobs:
    def get(self, job_id):
        return None

webhooks.deliver(NoJobs(), None, worker.app.settings, "no-such-job", 0, lambda *a: None)
logging.getLogger("probe").warning("a line")
print("RESULT", json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")))
"""


def run(code: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environ.update(DEPLOY_ENV="development", **env)
    done = subprocess.run([sys.executable, "-c", code], env=environ, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def log_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def results(done: subprocess.CompletedProcess) -> list:
    """What the code printed after `RESULT ` (its log lines are on stdout too)."""
    return [json.loads(line.removeprefix("RESULT ")) for line in done.stdout.splitlines()
            if line.startswith("RESULT ")]


def opentelemetry_modules(done: subprocess.CompletedProcess) -> set[str]:
    return set(results(done)[0])


# Ours when on: the SDK's traces, the exporter, the instrumentations.
TRACING_MODULES = ("opentelemetry.sdk.trace", "opentelemetry.exporter",
                   "opentelemetry.instrumentation", "opentelemetry.propagate")


def test_off_by_default_nothing_of_tracing_is_imported_or_set_up():
    done = run(_EVERY_ROLE + """
from opentelemetry import trace
assert trace._TRACER_PROVIDER is None  # never set: spans cannot even be made
""")
    imported = opentelemetry_modules(done)
    # redis-py 7 itself imports OpenTelemetry's metrics SDK whenever it is installed (its own
    # optional metrics, which stay off): that much comes with `import redis`, and no more.
    with_redis = opentelemetry_modules(run("""
import json, sys, redis
print("RESULT", json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")))
"""))
    assert imported <= with_redis, imported - with_redis
    assert not [name for name in imported if name.startswith(TRACING_MODULES)]
    lines = log_lines(done.stdout + done.stderr)
    assert any(line["message"] == "a line" for line in lines)
    assert not any("trace_id" in line for line in lines)


def test_on_every_role_sets_up_and_log_lines_carry_the_span_ids():
    # No collector listens there: spans are dropped on export, nothing else changes.
    done = run(_EVERY_ROLE + """
from opentelemetry import trace
from common import tracing
assert tracing.enabled()
with tracing.span("probe", "internal", {"xmlconv.job_id": "j-1", "empty": None}) as span:
    ids = trace.get_current_span().get_span_context()
    logging.getLogger("probe").warning("inside")
print("RESULT", json.dumps([trace.format_trace_id(ids.trace_id),
                          trace.format_span_id(ids.span_id)]))
""", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OTEL_BSP_EXPORT_TIMEOUT="100",
        OTEL_EXPORTER_OTLP_TIMEOUT="1")
    imported, (trace_id, span_id) = results(done)
    assert {"opentelemetry.sdk.trace", "opentelemetry.instrumentation.flask",
            "opentelemetry.instrumentation.celery", "opentelemetry.instrumentation.redis",
            "opentelemetry.exporter.otlp.proto.http.trace_exporter"} <= set(imported)
    inside = [line for line in log_lines(done.stdout) if line["message"] == "inside"]
    assert [(line["trace_id"], line["span_id"]) for line in inside] == [(trace_id, span_id)]
    assert len(trace_id) == 32 and len(span_id) == 16
    outside = [line for line in log_lines(done.stdout) if line["message"] == "a line"]
    assert outside and not any("trace_id" in line for line in outside)


@pytest.mark.parametrize("value", ["collector:4318", "ftp://collector", "http://", "http://a b",
                                   "http://collector:4318?x=1"])
def test_a_bad_endpoint_stops_the_process_naming_the_variable(value):
    with pytest.raises(SettingsError) as caught:
        load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": value})
    assert caught.value.variable == "OTEL_EXPORTER_OTLP_ENDPOINT"


def test_the_endpoint_is_the_collectors_base_url():
    assert load_settings({}).otel_exporter_otlp_endpoint == ""
    settings = load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example:4318/"})
    assert settings.otel_exporter_otlp_endpoint == "https://otel.example:4318"
