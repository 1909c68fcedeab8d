"""GET /jobs/<id>/events: a job's changes pushed to its client as Server-Sent Events.

    retry: 2000

    id: 3
    event: job
    data: {"id": "…", "status": "running", "progress": {…}, …}

    : keep-alive

One `job` event per change of the job (claimed, each progress step — at most two a second, as
the worker writes them —, finished, cancelled, queued again), its `data` the job resource as
GET /jobs/<id> shows it, its `id` the job's version: a client that reconnects with
`Last-Event-ID` gets only what is newer (the job as it is now, if it changed meanwhile). The
first event is the job as it is when the stream opens (unless Last-Event-ID says the client has
it); the event of a final status is the last, then the stream ends. A resumed stream of a job
that has finished, whose last event the client had, answers 204 (EventSource stops there).
A quiet stream gets a comment every EVENTS_HEARTBEAT_SECONDS; a stream lasts at most
EVENTS_MAX_SECONDS, then ends with a comment saying so (EventSource reconnects by itself,
with Last-Event-ID); so does every stream of a process told to stop (end_streams). If the
job's record disappears meanwhile (expired, deleted, or lost with a Redis that restarted
without it), a `gone` event carries the error envelope and the stream ends.

Authenticated and sealed like GET /jobs/<id> (404 for another client's job). What a stream
costs is a greenlet and one of the process's EVENTS_MAX_STREAMS slots (503 STREAMS_BUSY beyond),
of which one key holds at most EVENTS_MAX_PER_KEY (429 TOO_MANY_STREAMS); every stream of the
process is fed by one Redis subscription (jobs/events.py), never by polling.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, request

from common import errors
from jobs import CLOSING, GONE, Job, Watch, job_resource

from .auth import current_tenant
from .params import invalid
from .services import services

bp = Blueprint("events", __name__)


def end_streams(app: Flask) -> None:
    """The process is shutting down (gunicorn's worker, on SIGTERM): every stream ends now
    with a comment, and its client reconnects to another process, instead of holding the
    shutdown for API_GRACEFUL_TIMEOUT."""
    app.extensions["xmlconv"].jobs.events.interrupt()

RETRY_MILLISECONDS = 2000  # what EventSource waits before reconnecting


def _last_event_id() -> int | None:
    raw = request.headers.get("Last-Event-ID")
    if raw is None or raw.strip() == "":
        return None
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise invalid("Last-Event-ID", "Last-Event-ID must be an event id this stream gave "
                      "(a whole number)")
    return int(raw)


def job_event(job: Job) -> str:
    data = json.dumps(job_resource(job), separators=(",", ":"))
    return f"id: {job.version}\nevent: job\ndata: {data}\n\n"


def gone_event(job_id: str) -> str:
    data = json.dumps(errors.error_body(
        errors.JOB_EXPIRED, "this job has expired or was deleted", {"job_id": job_id}))
    return f"event: gone\ndata: {data}\n\n"


@bp.get("/jobs/<job_id>/events")
def job_events(job_id: str) -> Response:
    svc = services()
    tenant = current_tenant()
    lifecycle = svc.lifecycle
    job = lifecycle.find(job_id, tenant.id)  # 404 / 410 as GET /jobs/<id>
    last = _last_event_id()
    if job.finished and last is not None and last >= job.version:
        return _no_content()  # the client has the final event: EventSource stops here
    with contextlib.ExitStack() as held:  # refused here (429/503) before any byte is sent
        held.enter_context(svc.stream_slots.take(tenant.id))
        watch = held.enter_context(svc.jobs.events.watch(job.id))
        job = lifecycle.find(job_id, tenant.id)  # again, now that its changes reach `watch`
        release = held.pop_all()
    body = _Body(_stream(watch, job, last, svc.settings.events_max_seconds,
                         svc.settings.events_heartbeat_seconds), release)
    response = Response(body, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


class _Body:
    """The stream's text, and the slot and watch it holds, given back when the server closes
    the response: at its end, or when the client went away (the next write fails), or even
    if it was never read."""

    def __init__(self, lines: Iterator[str], release: contextlib.ExitStack) -> None:
        self._lines = lines
        self._release = release

    def __iter__(self) -> Iterator[str]:
        return self._lines

    def close(self) -> None:
        try:
            self._lines.close()  # type: ignore[attr-defined]
        finally:
            self._release.close()


def _no_content() -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response


def _stream(watch: Watch, job: Job, last: int | None, max_seconds: float,
            heartbeat: float) -> Iterator[str]:
    """The stream's text: the job now (unless the client has it), then each newer change, until
    a final status, the job's disappearance or the stream's time is up."""
    deadline = time.monotonic() + max_seconds
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    if last is None or job.version > last:
        yield job_event(job)
        last = job.version
    if job.finished:
        return
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            yield ": this stream's time is up; reconnect with Last-Event-ID\n\n"
            return
        change = watch.next(min(heartbeat, left))
        if change is None:
            yield ": keep-alive\n\n"
            continue
        if change is GONE:
            yield gone_event(watch.job_id)
            return
        if change is CLOSING:
            yield ": this server is shutting down; reconnect with Last-Event-ID\n\n"
            return
        assert isinstance(change, Job)
        if change.version <= last:
            continue  # had it already (a catch-up after the subscription came back)
        yield job_event(change)
        last = change.version
        if change.finished:
            return
