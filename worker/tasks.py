"""The worker's tasks: thin wrappers over worker/runner.py, worker/sweep.py and
worker/webhooks.py."""

from __future__ import annotations

from functools import cache

from jobs import CONVERT_TASK, SWEEP_TASK, WEBHOOK_TASK, Lifecycle, open_service

from .app import app, settings
from .runner import RunLost, TaskFailed, run_job
from .sweep import sweep
from .webhooks import deliver


@cache
def lifecycle() -> Lifecycle:
    # One connection pool per worker process (created after the fork, on first use).
    return open_service(settings, app).lifecycle


# `throws`: a failed job, or a run lost to a Redis outage, is an expected outcome, logged by
# Celery in one line without a traceback.
@app.task(name=CONVERT_TASK, bind=True, throws=(TaskFailed, RunLost))
def convert_job(self, job_id: str, dispatch: str | None = None) -> None:
    run_job(lifecycle(), job_id, dispatch, self.request.hostname or "worker", settings)


@app.task(name=SWEEP_TASK)
def sweep_expired() -> None:
    sweep(lifecycle())


# Retried on the schedule WEBHOOK_RETRY_SCHEDULE (worker/webhooks.py decides when).
@app.task(name=WEBHOOK_TASK, bind=True, max_retries=len(settings.webhook_retry_schedule))
def deliver_webhook(self, job_id: str) -> None:
    deliver(lifecycle(), settings, job_id, self.request.retries, self.retry)
