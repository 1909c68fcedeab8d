"""Celery beat's scheduler with a heartbeat (`beat_scheduler` in worker/app.py).

Beat answers no ping, so besides running the schedule it writes a key in Redis every
WORKER_HEARTBEAT_SECONDS (TTL: three periods); `python -m worker.health --beat` checks it.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from celery.beat import PersistentScheduler

from common.settings import load_settings
from jobs import StoreUnavailable, open_workers

log = logging.getLogger(__name__)


class HeartbeatScheduler(PersistentScheduler):
    def setup_schedule(self) -> None:
        super().setup_schedule()
        settings = load_settings()
        self._workers = open_workers(settings)
        self._period = settings.worker_heartbeat_seconds
        self._next_beat = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        delay = super().tick(*args, **kwargs)
        now = time.monotonic()
        if now >= self._next_beat:
            self._next_beat = now + self._period
            try:
                self._workers.beat_tick(socket.gethostname(), 3 * self._period)
            except StoreUnavailable as exc:  # the broker connection reports the outage too
                log.warning("beat heartbeat not written: %s", exc)
        # Wake at least once a period, even when the next task is far away.
        return min(delay, self._period)
