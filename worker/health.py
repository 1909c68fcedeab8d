"""Worker health: a heartbeat in Redis while the worker runs, and a ping command for probes.

    python -m worker.health [--hostname celery@HOST] [--timeout 5]
    python -m worker.health --beat
    xmlconv-worker-health          (the same, as a console script)

exits 0 when that worker answers a broadcast ping through the broker (a container
HEALTHCHECK), 1 otherwise. The default hostname is Celery's own default, celery@<this host>.
With --beat: exits 0 while celery beat's heartbeat (worker/beat.py) has not lapsed.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import time

from celery import bootsteps

from common import heartbeats
from common.logs import json_line, utc_timestamp
from common.redis_conn import connect
from common.settings import load_settings, settings_or_exit

log = logging.getLogger(__name__)


class Heartbeat(bootsteps.StartStopStep):
    """Writes this worker's heartbeat every WORKER_HEARTBEAT_SECONDS (TTL: three periods)."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: object, **kwargs: object) -> None:
        super().__init__(worker, **kwargs)
        self.timer_ref = None
        self.client = None

    def start(self, worker: object) -> None:
        settings = load_settings()
        self.client = connect(settings)
        self.period = settings.worker_heartbeat_seconds
        self.info = {"pid": os.getpid(), "concurrency": settings.worker_concurrency,
                     "started_at": utc_timestamp(time.time())}
        self._beat(worker)
        self.timer_ref = worker.timer.call_repeatedly(  # type: ignore[attr-defined]
            self.period, self._beat, (worker,), priority=10)

    def _beat(self, worker: object) -> None:
        try:
            heartbeats.beat(self.client, worker.hostname, 3 * self.period,  # type: ignore[attr-defined]
                            self.info)
        except Exception as exc:  # Redis away: the broker connection logs that loudly already
            log.warning("heartbeat not written: %s", exc)

    def stop(self, worker: object) -> None:
        if self.timer_ref is not None:
            self.timer_ref.cancel()
            self.timer_ref = None
        if self.client is not None:
            try:
                heartbeats.forget(self.client, worker.hostname)  # type: ignore[attr-defined]
            except Exception as exc:
                log.warning("heartbeat not removed: %s", exc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xmlconv-worker-health", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--hostname", default=f"celery@{socket.gethostname()}",
                        help="the worker's node name (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--beat", action="store_true",
                        help="check celery beat's heartbeat instead of pinging a worker")
    args = parser.parse_args(argv)
    if args.beat:
        return _beat_health()

    from .app import app  # settings are read (and checked) here

    replies = app.control.ping(destination=[args.hostname], timeout=args.timeout)
    alive = any(args.hostname in reply for reply in replies or [])
    print(json_line("worker-health", "INFO" if alive else "ERROR", "worker.health",
                    "worker answered" if alive else "worker did not answer",
                    hostname=args.hostname), flush=True)
    return 0 if alive else 1


def _beat_health() -> int:
    client = connect(settings_or_exit("beat-health"))
    try:
        seen = heartbeats.beat_seen(client)
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
