"""The worker's tasks: thin wrappers over worker/runner.py and worker/sweep.py."""

from __future__ import annotations

from functools import cache

from common.jobs import JobStore
from common.queue import CONVERT_TASK, SWEEP_TASK
from common.redis_conn import connect
from common.storage import Storage, open_storage

from .app import app, settings
from .runner import JobRunner
from .sweep import sweep


@cache
def _store() -> JobStore:
    # One connection pool per worker process (created after the fork, on first use).
    return JobStore(connect(settings), result_ttl_seconds=settings.result_ttl_seconds,
                    tombstone_ttl_seconds=settings.tombstone_ttl_seconds)


@cache
def _storage() -> Storage:
    return open_storage(settings.data_dir)


@app.task(name=CONVERT_TASK, bind=True)
def convert_job(self, job_id: str) -> None:
    JobRunner(_store(), _storage(), self.request.hostname or "worker",
              settings.delete_input_on_finish).run(job_id)


@app.task(name=SWEEP_TASK)
def sweep_expired() -> None:
    sweep(_store(), _storage(), settings)
