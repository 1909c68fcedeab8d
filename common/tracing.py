"""Traces (OpenTelemetry): set up in a process, or not at all.

    setup(settings, "api" | "worker" | "webhooks")  -> True when traces are on in this process
    instrument_flask(app)                            the API's requests (after setup)
    span(name, kind, attributes)                     a span of our own (a no-op when off)

On when OTEL_EXPORTER_OTLP_ENDPOINT is set: a TracerProvider whose spans go, batched, by OTLP/HTTP
(protobuf) to `<endpoint>/v1/traces`, with redis-py, botocore and Celery instrumented (Celery's
instrumentation injects the trace context into a task's headers in `before_task_publish` and
takes it out in `task_prerun`, so a job's task is a descendant of the request that submitted
it), and the current span's ids in every JSON log line (common/logs.py). Off otherwise: no
provider, no instrumentation, no export thread, and nothing of OpenTelemetry's tracing imported
(redis-py 7 loads OpenTelemetry's metrics SDK by itself wherever it is installed, for metrics of
its own that stay off: ~40 ms and ~3 MB at a process's start); `span()` is a shared no-op.

After the fork, always: the SDK's export thread and its connection do not survive a fork, so each
process sets up its own — gunicorn's in the app factory (which runs in each worker process,
after gevent's patching, since gunicorn_config.py does not preload the app: the export thread is
then a greenlet), each Celery pool process in
`worker_process_init`, the webhooks worker (threads, no fork) in `worker_init`.

The SDK reads its other standard variables itself: OTEL_EXPORTER_OTLP_HEADERS (a collector's
credentials), OTEL_TRACES_SAMPLER(_ARG), OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_* (the batch: its
delay, its queue's bound — spans beyond it are dropped, never held — and its export timeout).
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .logs import use_trace_ids
from .settings import Settings

# What compose passes through to the SDK beside OTEL_EXPORTER_OTLP_ENDPOINT (a setting): read by
# OpenTelemetry itself, no setting of the service.
SDK_VARIABLES = ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
                 "OTEL_RESOURCE_ATTRIBUTES")

# Requests not traced: probes and scrapes, every few seconds, would drown the jobs' traces.
UNTRACED_PATHS = ("/health", "/metrics")

# The attributes our own spans and the API's request span carry.
REQUEST_ID = "xmlconv.request_id"
JOB_ID = "xmlconv.job_id"

_state: dict[str, Any] = {}  # "pid": the process that set up, "tracer": our spans' tracer


def enabled() -> bool:
    """True when this process has set traces up."""
    return _state.get("pid") == os.getpid()


def setup(settings: Settings, service: str) -> bool:
    """Traces on for this process (once; again in a forked child) when the endpoint is set."""
    if not settings.otel_exporter_otlp_endpoint:
        return False
    if enabled():
        return True
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": f"xmlconv-{service}",
                                "service.namespace": "its-convert-xml",
                                "deployment.environment.name": settings.deploy_env})
    # Not the SDK's exit handler: it waits up to 30 s for a collector that does not answer (an
    # API process's stop took 18 s); ours, shutdown(), gives up after FLUSH_AT_EXIT_MILLIS.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
        endpoint=settings.otel_exporter_otlp_endpoint + "/v1/traces")))
    trace.set_tracer_provider(provider)
    for instrumentor in (RedisInstrumentor(), BotocoreInstrumentor(), CeleryInstrumentor()):
        if instrumentor.is_instrumented_by_opentelemetry:  # by a parent before the fork
            instrumentor.uninstrument()
        instrumentor.instrument(tracer_provider=provider)
    _state.update(pid=os.getpid(), tracer=provider.get_tracer("its-convert-xml"),
                  provider=provider)
    atexit.register(shutdown)

    def current_ids() -> tuple[str, str] | None:
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return None
        return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)

    use_trace_ids(current_ids)
    return True


def instrument_flask(app: Any) -> None:
    """The app's requests as server spans, each with its request id (X-Request-ID) as
    `xmlconv.request_id`. Call after setup(), and after the request id's own hook is registered
    (api/request_id.py): the span is started after it, and before auth and limits, so that a
    refused request has its span too."""
    if not enabled():
        return
    from flask import g
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    def request_hook(span: Any, environ: dict) -> None:
        request_id = g.get("request_id")
        if request_id and span.is_recording():
            span.set_attribute(REQUEST_ID, request_id)

    FlaskInstrumentor().instrument_app(app, request_hook=request_hook,
                                       tracer_provider=_state["provider"],
                                       excluded_urls=",".join(UNTRACED_PATHS))


class Span:
    """What span() yields: `set(attributes)` adds them (None values left out); a no-op when
    traces are off."""

    def __init__(self, span: Any = None) -> None:
        self._span = span

    def set(self, attributes: dict[str, Any]) -> None:
        if self._span is not None:
            self._span.set_attributes({k: v for k, v in attributes.items() if v is not None})


_NO_SPAN = Span()


@contextmanager
def span(name: str, kind: str = "internal", attributes: dict[str, Any] | None = None
         ) -> Iterator[Span]:
    """A span of our own around the block, a child of the current one; off: nothing at all."""
    if not enabled():
        yield _NO_SPAN
        return
    from opentelemetry.trace import SpanKind

    with _state["tracer"].start_as_current_span(name, kind=SpanKind[kind.upper()]) as current:
        wrapped = Span(current)
        wrapped.set(attributes or {})
        yield wrapped


FLUSH_AT_EXIT_MILLIS = 2000  # a process about to exit waits at most this for its last spans


def shutdown() -> None:
    """Send what is still batched, a process about to exit (at its exit, or from a Celery pool
    process's `worker_process_shutdown`: those end by os._exit, without exit handlers): at most
    FLUSH_AT_EXIT_MILLIS, so that a collector that does not answer never holds a stop (those
    spans are lost). The SDK's flush takes no time limit (it sends in the caller's thread, for
    as long as the exporter's timeout and retries last): it runs in a thread of its own, given
    up on after the limit. Once: tracing is off in this process afterwards."""
    if not enabled():
        return
    provider = _state["provider"]
    _state.clear()
    use_trace_ids(None)
    flusher = threading.Thread(target=provider.force_flush, name="trace-flush", daemon=True)
    flusher.start()
    flusher.join(FLUSH_AT_EXIT_MILLIS / 1000)
