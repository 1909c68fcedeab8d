"""The worker's tasks: thin wrappers over worker/runner.py, worker/sweep.py and
worker/webhooks.py."""

from __future__ import annotations

from functools import cache

from jobs import (
    CONVERT_TASK,
    SWEEP_TASK,
    WEBHOOK_TASK,
    JobService,
    Lifecycle,
    open_service,
    publish_webhook,
)

from .app import app, settings
from .runner import RunLost, TaskFailed, run_job
from .sweep import sweep
from .webhooks import deliver


@cache
def service() -> JobService:
    # One connection pool per worker process (created after the fork, on first use).
    return open_service(settings, app)


def lifecycle() -> Lifecycle:
    return service().lifecycle


# `throws`: a failed job, or a run lost to a Redis outage, is an expected outcome, logged by
# Celery in one line without a traceback.
@app.task(name=CONVERT_TASK, bind=True, throws=(TaskFailed, RunLost))
def convert_job(self, job_id: str, dispatch: str | None = None) -> None:
    run_job(lifecycle(), job_id, dispatch, self.request.hostname or "worker", settings)


@app.task(name=SWEEP_TASK)
def sweep_expired() -> None:
    sweep(lifecycle())


# Consumed by the webhooks worker alone (worker/webhooks_app.py). Each next try is a new message
# with a countdown (worker/webhooks.py decides when): a retry on WEBHOOK_RETRY_SCHEDULE carries
# the attempts made; a wait for a free slot of the client carries them unchanged. (A message of
# an earlier version, retried by Celery, says so in request.retries.)
@app.task(name=WEBHOOK_TASK, bind=True)
def deliver_webhook(self, job_id: str, retries_done: int | None = None) -> None:
    done = self.request.retries if retries_done is None else retries_done
    deliver(lifecycle(), service().webhook_slots, settings, job_id, done,
            lambda countdown, retries: publish_webhook(app, job_id, retries, countdown))
