"""The worker's health, both sides of it:

- `Heartbeat`, a Celery bootstep (added in worker/app.py) that writes this worker's heartbeat in
  Redis every WORKER_HEARTBEAT_SECONDS while the worker runs; /health/ready and /metrics read them.
- the probe of the worker image (container HEALTHCHECKs):

    python -m worker.health [--hostname celery@HOST] [--timeout 5]
    python -m worker.health --webhooks
    python -m worker.health --beat
    xmlconv-worker-health          (the same, as a console script)

  exits 0 when that worker answers a broadcast ping through the broker, 1 otherwise. The default
  hostname is Celery's own default, celery@<this host>; with --webhooks, the webhooks worker's,
  webhooks@<this host> (its command names it so: `-n webhooks@%h`). With --beat: exits 0 while
  celery beat's heartbeat (written by its scheduler, worker/beat.py) has not lapsed.

The probe reaches the Celery app (worker/app.py) only when it pings.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import time
from typing import Any

from celery import bootsteps

from common.logs import json_line, utc_timestamp
from common.settings import load_settings, settings_or_exit
from jobs import open_workers

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
        self.workers = None
        self.period: int | None = None
        self.facts: dict[str, Any] = {}
        self.last_written: str | None = None

    def start(self, worker: object) -> None:
        settings = load_settings()
        self.workers = open_workers(settings)
        self.period = settings.worker_heartbeat_seconds
        self.facts = {"pid": os.getpid(), "concurrency": settings.worker_concurrency,
                      "started_at": utc_timestamp(time.time())}
        self._beat(worker)
        self.timer_ref = worker.timer.call_repeatedly(  # type: ignore[attr-defined]
            self.period, self._beat, (worker,), priority=10)

    def _beat(self, worker: object) -> None:
        try:
            self.workers.beat(worker.hostname, 3 * self.period,  # type: ignore[attr-defined]
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
        if self.workers is not None:
            try:
                self.workers.forget(worker.hostname)  # type: ignore[attr-defined]
            except Exception as exc:
                log.warning("heartbeat not removed: %s", exc)


# -- the probe

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xmlconv-worker-health", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--hostname", default=None,
                        help=f"the worker's node name (default: celery@{socket.gethostname()}, "
                             f"or webhooks@{socket.gethostname()} with --webhooks)")
    parser.add_argument("--webhooks", action="store_true",
                        help="ping the webhooks worker of this host")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--beat", action="store_true",
                        help="check celery beat's heartbeat instead of pinging a worker")
    args = parser.parse_args(argv)
    if args.beat:
        return _beat_health()
    node = "webhooks" if args.webhooks else "celery"
    return _worker_health(args.hostname or f"{node}@{socket.gethostname()}", args.timeout)


def _worker_health(hostname: str, timeout: float) -> int:
    from .app import app  # settings are read (and checked) here

    replies = app.control.ping(destination=[hostname], timeout=timeout)
    alive = any(hostname in reply for reply in replies or [])
    print(json_line("worker-health", "INFO" if alive else "ERROR", "worker.health",
                    "worker answered" if alive else "worker did not answer",
                    hostname=hostname), flush=True)
    return 0 if alive else 1


def _beat_health() -> int:
    workers = open_workers(settings_or_exit("beat-health"))
    try:
        seen = workers.beat_seen()
    except Exception as exc:  # Redis away: unhealthy, said in one line
        seen, error = None, type(exc).__name__
    else:
        error = None if seen else "no heartbeat"
    print(json_line("beat-health", "INFO" if seen else "ERROR", "worker.health",
                    "beat is ticking" if seen else "beat is not ticking",
                    **(seen or {"error": error})), flush=True)
    return 0 if seen else 1


if __name__ == "__main__":
    sys.exit(main())
