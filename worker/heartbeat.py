"""The worker's heartbeat: a Celery bootstep (added in worker/app.py) that writes this worker's
heartbeat in Redis every WORKER_HEARTBEAT_SECONDS while the worker runs; /health/ready reads them.

Celery beat's own heartbeat is written by its scheduler (worker/beat.py); the probe that checks
either one is worker/probe.py. This module imports neither worker/app.py nor the probe.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery import bootsteps

from common import heartbeats
from common.logs import utc_timestamp
from common.redis_conn import connect
from common.settings import load_settings

log = logging.getLogger(__name__)


class Heartbeat(bootsteps.StartStopStep):
    """Writes this worker's heartbeat every WORKER_HEARTBEAT_SECONDS (TTL: three periods).

    `info()` is the bootstep hook Celery merges into the worker's stats (`celery inspect
    stats`, Flower's worker page): it must stay a method, so what the heartbeat says about the
    worker lives in `self.facts`.
    """

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: object, **kwargs: object) -> None:
        super().__init__(worker, **kwargs)
        self.timer_ref = None
        self.client = None
        self.period: int | None = None
        self.facts: dict[str, Any] = {}
        self.last_written: str | None = None

    def start(self, worker: object) -> None:
        settings = load_settings()
        self.client = connect(settings)
        self.period = settings.worker_heartbeat_seconds
        self.facts = {"pid": os.getpid(), "concurrency": settings.worker_concurrency,
                      "started_at": utc_timestamp(time.time())}
        self._beat(worker)
        self.timer_ref = worker.timer.call_repeatedly(  # type: ignore[attr-defined]
            self.period, self._beat, (worker,), priority=10)

    def _beat(self, worker: object) -> None:
        try:
            heartbeats.beat(self.client, worker.hostname, 3 * self.period,  # type: ignore[attr-defined]
                            self.facts)
        except Exception as exc:  # Redis away: the broker connection logs that loudly already
            log.warning("heartbeat not written: %s", exc)
        else:
            self.last_written = utc_timestamp(time.time())

    def info(self, worker: object) -> dict[str, Any]:
        """Merged by Celery into the worker's stats, under one key of its own."""
        return {"heartbeat": {**self.facts, "period_seconds": self.period,
                              "last_written": self.last_written}}

    def stop(self, worker: object) -> None:
        if self.timer_ref is not None:
            self.timer_ref.cancel()
            self.timer_ref = None
        if self.client is not None:
            try:
                heartbeats.forget(self.client, worker.hostname)  # type: ignore[attr-defined]
            except Exception as exc:
                log.warning("heartbeat not removed: %s", exc)
