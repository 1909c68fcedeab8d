"""The worker's tasks: thin wrappers over worker/runner.py and worker/sweep.py."""

from __future__ import annotations

from functools import cache

from common.lifecycle import Lifecycle, build_lifecycle
from common.queue import CONVERT_TASK, SWEEP_TASK

from .app import app, settings
from .runner import JobFailed, run_job
from .sweep import sweep


@cache
def lifecycle() -> Lifecycle:
    # One connection pool per worker process (created after the fork, on first use).
    return build_lifecycle(settings, app)


# `throws`: a failed job is an expected outcome, logged by Celery in one line without a traceback.
@app.task(name=CONVERT_TASK, bind=True, throws=(JobFailed,))
def convert_job(self, job_id: str, dispatch: str | None = None) -> None:
    run_job(lifecycle(), job_id, dispatch, self.request.hostname or "worker")


@app.task(name=SWEEP_TASK)
def sweep_expired() -> None:
    sweep(lifecycle())
