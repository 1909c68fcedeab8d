"""Recovery of lost runs: a Celery bootstep (added in worker/app.py) in every worker's main process.

Every WORKER_HEARTBEAT_SECONDS it marks the jobs this worker is running as alive, then asks the
lifecycle to requeue any running job whose run is gone — its worker killed or its host lost
(nothing marks it alive any more), Redis restarted under it or the hard time limit hit (the
worker no longer runs it) — once it has been silent for JOB_STALL_SECONDS. Every live worker
does this, so recovery needs no one process; the job store's transitions make sure only one of
them requeues a given run. Bound: a lost run is queued again within JOB_STALL_SECONDS +
WORKER_HEARTBEAT_SECONDS of its last sign of life, or of a worker being back.
"""

from __future__ import annotations

import logging

from celery import bootsteps
from celery.worker import state

from common.settings import load_settings
from jobs import Lifecycle, open_service

log = logging.getLogger(__name__)


class Recovery(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: object, **kwargs: object) -> None:
        super().__init__(worker, **kwargs)
        self.timer_ref = None
        self.lifecycle: Lifecycle | None = None

    def start(self, worker: object) -> None:
        settings = load_settings()
        self.lifecycle = open_service(settings, worker.app).lifecycle  # type: ignore[attr-defined]
        self.timer_ref = worker.timer.call_repeatedly(  # type: ignore[attr-defined]
            settings.worker_heartbeat_seconds, self._tick, (), priority=10)

    def _tick(self) -> None:
        try:
            self.lifecycle.keep_alive(request.id for request in list(state.active_requests))
            self.lifecycle.recover()
        except Exception as exc:  # Redis away: the broker connection says so loudly already
            log.warning("recovery skipped: %s", exc)

    def stop(self, worker: object) -> None:
        if self.timer_ref is not None:
            self.timer_ref.cancel()
            self.timer_ref = None
