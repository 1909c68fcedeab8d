"""Health probes for the worker image (container HEALTHCHECKs):

    python -m worker.probe [--hostname celery@HOST] [--timeout 5]
    python -m worker.probe --beat
    xmlconv-worker-health          (the same, as a console script)

exits 0 when that worker answers a broadcast ping through the broker, 1 otherwise. The default
hostname is Celery's own default, celery@<this host>. With --beat: exits 0 while celery beat's
heartbeat (written by its scheduler, worker/beat.py) has not lapsed.

The probe reaches the Celery app (worker/app.py) only when it pings; nothing in the worker
imports this module.
"""

from __future__ import annotations

import argparse
import socket
import sys

from common import heartbeats
from common.logs import json_line
from common.redis_conn import connect
from common.settings import settings_or_exit


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
    return _worker_health(args.hostname, args.timeout)


def _worker_health(hostname: str, timeout: float) -> int:
    from .app import app  # settings are read (and checked) here

    replies = app.control.ping(destination=[hostname], timeout=timeout)
    alive = any(hostname in reply for reply in replies or [])
    print(json_line("worker-health", "INFO" if alive else "ERROR", "worker.probe",
                    "worker answered" if alive else "worker did not answer",
                    hostname=hostname), flush=True)
    return 0 if alive else 1


def _beat_health() -> int:
    client = connect(settings_or_exit("beat-health"))
    try:
        seen = heartbeats.beat_seen(client)
    except Exception as exc:  # Redis away: unhealthy, said in one line
        seen, error = None, type(exc).__name__
    else:
        error = None if seen else "no heartbeat"
    print(json_line("beat-health", "INFO" if seen else "ERROR", "worker.probe",
                    "beat is ticking" if seen else "beat is not ticking",
                    **(seen or {"error": error})), flush=True)
    return 0 if seen else 1


if __name__ == "__main__":
    sys.exit(main())
