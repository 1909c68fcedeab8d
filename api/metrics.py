"""GET /metrics: the API's figures in Prometheus's text format (docs/operations.md lists them).

Two sources:

- HTTP figures, measured by this process around every request: duration by route, method and
  status, and the bytes of request bodies. Under gunicorn they are written to files shared by its
  processes (prometheus_client's multiprocess mode, set up by gunicorn_config.py), so any process
  answers a scrape for all of them. The cost per request is a few dictionary look-ups and two
  writes to a memory-mapped file (about 13 µs measured), and no Redis round trip.
- Job figures, read from Redis when scraped (jobs/figures.py): jobs submitted and finished,
  conversion histograms (counted by the workers, wherever they run), unfinished jobs, the queues'
  lengths and the live workers.

The route sits in front of the Flask app, outside the client API: it has its own credential
(METRICS_TOKEN as a bearer token; open without one in development only, off elsewhere), is never
rate-limited or counted against a client, and says nothing about any one job or client.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any

from flask import Flask, request
from prometheus_client import CollectorRegistry, Histogram, values
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from common import errors
from common.errors import ServiceError
from common.settings import Settings
from jobs import JobFigures, StoreUnavailable

log = logging.getLogger(__name__)

PATH = "/metrics"
# The URL rule Flask matched (`/jobs/<job_id>`), never the path: ids would make a series per job.
ROUTE_KEY = "xmlconv.route"  # where the app leaves it in the WSGI environ
UNMATCHED = "unmatched"  # the route of a request no rule matched (404, 405)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
OTHER_METHOD = "other"

# From a status poll's milliseconds to a 300 MB upload's minutes.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
BODY_BUCKETS = (2**10, 2**14, 2**17, 2**20, 2**22, 2**24, 2**26, 2**28, 300 * 2**20)

# Not in the default registry: each scrape builds its own (below).
REQUEST_DURATION = Histogram(
    "xmlconv_http_request_duration_seconds",
    "HTTP requests by route (the URL rule), method and status: seconds until the answer was "
    "ready (a streamed download's sending not included); _count counts requests",
    ["route", "method", "status"], buckets=DURATION_BUCKETS, registry=None)
REQUEST_BODY = Histogram(
    "xmlconv_http_request_body_bytes",
    "Bytes received in a request body (uploads: as sent, before gzip decompression), by route",
    ["route"], buckets=BODY_BUCKETS, registry=None)


def use_process_slot(slot: int) -> None:
    """Under gunicorn (gunicorn_config.py), before this process records anything: its figures go
    to the files of its slot, not of its pid. A process recycled after API_MAX_REQUESTS hands
    its slot to its successor, which carries its counts on, so the files stay as many as the
    processes (a file per pid would pile up with every recycling and slow every scrape)."""
    mark_process_dead(slot)  # a predecessor's live gauges (none today) are not this one's
    values.ValueClass = values.MultiProcessValue(lambda: slot)


class _CountingInput:
    """The request body stream, counting the bytes the app reads from it."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.count = 0

    def read(self, *args: Any) -> bytes:
        data = self._stream.read(*args)
        self.count += len(data)
        return data

    def readline(self, *args: Any) -> bytes:
        data = self._stream.readline(*args)
        self.count += len(data)
        return data

    def readlines(self, *args: Any) -> list[bytes]:
        lines = self._stream.readlines(*args)
        self.count += sum(map(len, lines))
        return lines

    def readinto(self, buffer: Any) -> int:  # werkzeug's LimitedStream prefers it
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            self.count += len(line)
            yield line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class JobFiguresCollector:
    """A collector: the job figures, read from Redis at each scrape."""

    def __init__(self, figures: JobFigures) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("xmlconv_job_store_up",
                               "1 when Redis answered this scrape; the job figures are missing "
                               "when it did not")
        try:
            found = self.figures.snapshot()
        except StoreUnavailable as exc:
            log.warning("metrics: job store unavailable: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        submitted = CounterMetricFamily("xmlconv_jobs_submitted", "Jobs accepted, by format",
                                        labels=["format"])
        for fmt, count in sorted(found.submitted.items()):
            submitted.add_metric([fmt], count)
        yield submitted
        finished = CounterMetricFamily(
            "xmlconv_jobs_finished", "Jobs finished, by format, final status (succeeded, failed, "
            "cancelled) and error code (empty unless failed)",
            labels=["format", "status", "error_code"])
        for labels, count in sorted(found.finished.items()):
            finished.add_metric(list(labels), count)
        yield finished
        for name, text, histograms in (
                ("xmlconv_conversion_duration_seconds",
                 "Seconds a successful conversion's run took, by format", found.duration),
                ("xmlconv_conversion_input_bytes",
                 "Input bytes (decompressed) a successful conversion converted, by format",
                 found.input_bytes)):
            family = HistogramMetricFamily(name, text, labels=["format"])
            for fmt, histogram in sorted(histograms.items()):
                family.add_metric([fmt], histogram.buckets, histogram.sum)
            yield family
        unfinished = GaugeMetricFamily("xmlconv_jobs_unfinished",
                                       "Jobs not finished yet, by status (queued, running)",
                                       labels=["status"])
        unfinished.add_metric(["queued"], found.queued)
        unfinished.add_metric(["running"], found.running)
        yield unfinished
        queue = GaugeMetricFamily("xmlconv_queue_messages",
                                  "Messages waiting in a Celery queue for a worker",
                                  labels=["queue"])
        for name, count in found.queue_messages.items():
            queue.add_metric([name], count)
        yield queue
        yield GaugeMetricFamily("xmlconv_queue_unacked_messages",
                                "Messages a worker has received and not yet acknowledged (jobs "
                                "running, or about to)", value=found.unacked_messages)
        yield GaugeMetricFamily("xmlconv_workers",
                                "Live Celery workers (heartbeat not lapsed)", value=found.workers)
        yield GaugeMetricFamily("xmlconv_worker_processes",
                                "Conversion processes of the live workers (jobs they can run at "
                                "once)", value=found.worker_processes)


def _registry(figures: JobFigures) -> CollectorRegistry:
    registry = CollectorRegistry()
    if getattr(values.ValueClass, "_multiprocess", False):
        MultiProcessCollector(registry)  # every process's files (gunicorn_config.py)
    else:  # one process (a test's app, flask run): its own figures
        registry.register(REQUEST_DURATION)
        registry.register(REQUEST_BODY)
    registry.register(JobFiguresCollector(figures))
    return registry


def _refuse(error: ServiceError, start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The API's error envelope, without Flask (this route is not the app's)."""
    body = json.dumps(error.envelope()).encode()
    start_response(f"{error.status} {HTTPStatus(error.status).phrase}",
                   [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                    *error.headers.items()])
    return [body]


def is_operator(settings: Settings, authorization: str | None) -> bool:
    """Whether a request may read what operators read (GET /metrics, the details of GET
    /health/ready): it sends METRICS_TOKEN as a bearer token, or none is set in development."""
    token = settings.metrics_token
    if not token:
        return settings.deploy_env == "development"
    scheme, _, offered = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(offered.strip().encode(),
                                                              token.encode())


def _authorized(settings: Settings, environ: dict) -> ServiceError | None:
    """None when the scrape may proceed, else the refusal."""
    if is_operator(settings, environ.get("HTTP_AUTHORIZATION")):
        return None
    if not settings.metrics_token:
        return ServiceError(errors.NOT_FOUND, "metrics are off: set METRICS_TOKEN on the API "
                            "and send it as a bearer token", status=404)
    return ServiceError(errors.UNAUTHENTICATED, "send the metrics token: Authorization: Bearer "
                        "<METRICS_TOKEN>", status=401,
                        headers={"WWW-Authenticate": 'Bearer realm="xmlconv-metrics"'})


class Instrumented:
    """The app's WSGI callable, measured; and GET /metrics answered before the app sees it."""

    def __init__(self, app: Callable[..., Iterable[bytes]], settings: Settings,
                 figures: JobFigures) -> None:
        self.app = app
        self.settings = settings
        self.figures = figures
        self._durations: dict[tuple[str, str, str], Any] = {}  # labelled children, reused

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        status: list[str] = []

        def start(line: str, headers: list, exc_info: Any = None) -> Any:
            status.append(line)
            return start_response(line, headers, exc_info)

        body = None
        if environ.get("CONTENT_LENGTH") or environ.get("HTTP_TRANSFER_ENCODING"):
            body = environ["wsgi.input"] = _CountingInput(environ["wsgi.input"])
        scrape = environ.get("PATH_INFO") == PATH
        try:
            if scrape:
                return self._scrape(environ, start)
            return self.app(environ, start)
        finally:
            route = PATH if scrape else _route(environ)
            method = environ.get("REQUEST_METHOD", "")
            labels = (route, method if method in METHODS else OTHER_METHOD,
                      status[-1][:3] if status else "500")
            child = self._durations.get(labels)
            if child is None:
                child = self._durations[labels] = REQUEST_DURATION.labels(*labels)
            child.observe(time.perf_counter() - started)
            if body is not None and body.count:
                REQUEST_BODY.labels(route).observe(body.count)

    def _scrape(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        refusal = _authorized(self.settings, environ)
        if refusal is not None:
            return _refuse(refusal, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _refuse(ServiceError(errors.METHOD_NOT_ALLOWED, "/metrics answers GET only",
                                        status=405, headers={"Allow": "GET, HEAD"}),
                           start_response)
        encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT"))
        output = encoder(_registry(self.figures))
        start_response("200 OK", [("Content-Type", content_type),
                                  ("Content-Length", str(len(output))),
                                  ("Cache-Control", "no-store")])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [output]


def _route(environ: dict) -> str:
    return environ.get(ROUTE_KEY, UNMATCHED)


def register_metrics(app: Flask) -> None:
    svc = app.extensions["xmlconv"]

    # Flask runs these before any before_request hook, so a request refused by one (401, 429)
    # still has its route.
    @app.url_value_preprocessor
    def _remember_route(endpoint: str | None, view_args: dict | None) -> None:
        if request.url_rule is not None:
            request.environ[ROUTE_KEY] = request.url_rule.rule

    app.wsgi_app = Instrumented(app.wsgi_app, svc.settings, svc.jobs.figures)  # type: ignore[method-assign]
