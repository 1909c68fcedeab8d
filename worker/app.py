"""The Celery app for the worker, beat and Flower (`celery -A worker.app ...`).

Reads the settings at import (a bad value stops the process with a message naming the
variable) and routes Celery's logging through common/logs.py. A worker started from this module
consumes the conversions' queue alone (unless its command names queues with -Q); the webhooks
worker is `celery -A worker.webhooks_app worker`, the same app consuming the webhooks' queue.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

import celery.apps.worker
import click
from celery import signals
from celery.utils.log import get_multiprocessing_logger

from common import tracing
from common.logs import configure_logging, job_id_var, json_handler, json_line, request_id_var
from common.settings import settings_or_exit
from jobs import QUEUE, REQUEST_ID_HEADER, SWEEP_TASK, make_celery

from .broker import guard_closed_transport
from .health import Heartbeat
from .recovery import Recovery
from .watchdog import Watchdog

settings = settings_or_exit("worker")
guard_closed_transport()  # Redis stopping under a running job must not end the worker

app = make_celery(settings, "xmlconv")
app.conf.update(
    include=["worker.tasks"],
    # Lose no job: acknowledge only after the task ran, and hand a task back to the queue when
    # the process running it dies; take one task at a time so none waits behind a long job.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_disable_prefetch=True,  # a message is taken only by a free process
    worker_cancel_long_running_tasks_on_connection_loss=True,
    # Told to stop (SIGTERM, remapped to a cold shutdown by REMAP_SIGTERM=SIGQUIT, as Celery
    # documents for soft shutdown): let a job about to finish finish for this long, then cancel
    # the running job, whose message goes straight back to the queue for another worker.
    worker_soft_shutdown_timeout=settings.worker_soft_shutdown_timeout,
    worker_enable_soft_shutdown_on_idle=True,
    task_soft_time_limit=settings.job_soft_time_limit,
    task_time_limit=settings.job_time_limit,
    worker_concurrency=settings.worker_concurrency,
    worker_max_memory_per_child=settings.worker_max_memory_per_child,
    # Events for Flower.
    worker_send_task_events=True,
    worker_hijack_root_logger=False,
    # Beat's own scheduler plus a heartbeat for its health check (worker/beat.py).
    beat_scheduler="worker.beat:HeartbeatScheduler",
    beat_schedule={
        "sweep-expired-jobs": {"task": SWEEP_TASK, "schedule": settings.sweep_interval_seconds},
    },
)
app.steps["worker"].add(Heartbeat)
app.steps["worker"].add(Recovery)
app.steps["worker"].add(Watchdog)

_consumed = [QUEUE]  # what a worker of this process consumes when -Q names nothing


def consume(*queues: str) -> None:
    """The queues a worker started in this process consumes (worker/webhooks_app.py)."""
    _consumed[:] = queues


@signals.celeryd_init.connect
def _select_queues(instance: object, options: dict, **_: object) -> None:
    """Before the worker reads -Q: without it, only `_consumed` (Celery would take every queue
    the app declares, and conversion processes would deliver webhooks)."""
    if not options.get("queues"):
        instance.app.amqp.queues.select(_consumed)  # type: ignore[attr-defined]


@signals.celeryd_init.connect
def _json_logging_early(**_: object) -> None:
    """Before the worker checks its privileges (a warning when run as root): that warning and
    anything else said before Celery sets logging up must be JSON too."""
    _configure_logging("worker")


@signals.setup_logging.connect
def _json_logging(**_: object) -> None:
    """Connected, this stops Celery from installing its own (plain text) handlers."""
    command = click.get_current_context(silent=True)
    service = command.info_name if command and command.info_name in ("worker", "beat") else (
        "worker")
    _configure_logging(service)


def _configure_logging(service: str) -> None:
    configure_logging(service, settings.log_level)
    sys.unraisablehook = _unraisable_as_json
    # billiard's pool logger does not propagate to the root logger; without a handler of its
    # own, its warnings (a child killed, …) would reach stderr as plain text.
    pool_logger = get_multiprocessing_logger()
    pool_logger.handlers = [json_handler(service)]
    pool_logger.setLevel(logging.WARNING)


def _unraisable_as_json(unraisable: object) -> None:
    """An exception Python cannot raise (a generator closed while a MemoryError unwinds the
    conversion, a finalizer failing) is one log line, not a plain-text traceback on stderr."""
    exc = getattr(unraisable, "exc_value", None)
    logging.getLogger("worker.unraisable").warning(
        "exception ignored in %s: %s: %s", getattr(unraisable, "err_msg", None) or
        type(getattr(unraisable, "object", None)).__name__, type(exc).__name__, exc)


def _say_json(message: str, stream: object = sys.__stderr__) -> None:
    """Celery writes its shutdown notices straight to the terminal (`safe_say`, called from
    signal handlers, so no logging locks): keep them one JSON line each, written the same way."""
    line = json_line("worker", "WARNING", "celery.apps.worker", message.strip())
    with contextlib.suppress(OSError, AttributeError, ValueError):
        os.write(stream.fileno(), (line + "\n").encode())  # type: ignore[attr-defined]


celery.apps.worker.safe_say = _say_json  # Celery offers no setting for these lines


@signals.worker_ready.connect
def _check_shutdown_mode(**_: object) -> None:
    from billiard.common import REMAP_SIGTERM

    if REMAP_SIGTERM != "SIGQUIT":
        logging.getLogger(__name__).warning(
            "REMAP_SIGTERM is not SIGQUIT: a SIGTERM will wait for running jobs to finish "
            "instead of handing them back to the queue (docs/deployment.md)")


@signals.worker_process_init.connect
def _set_up_pool_process(**_: object) -> None:
    """In each pool process, after its fork: traces (when OTEL_EXPORTER_OTLP_ENDPOINT is set;
    the SDK's export thread would not survive a fork, common/tracing.py), and the converter
    (with libxml2) loaded now, not under its first job's memory ceiling (worker/memory.py):
    every job gets the same room."""
    tracing.setup(settings, "worker")
    from converter import convert  # noqa: F401


@signals.worker_process_shutdown.connect
def _flush_traces(**_: object) -> None:
    tracing.shutdown()


@signals.task_prerun.connect
def _enter_log_context(task_id: str, task: object, args: tuple = (), **_: object) -> None:
    request = task.request  # type: ignore[attr-defined]
    request_id_var.set(request.get(REQUEST_ID_HEADER))
    job_id_var.set(args[0] if args else None)


@signals.task_postrun.connect
def _leave_log_context(**_: object) -> None:
    request_id_var.set(None)
    job_id_var.set(None)
