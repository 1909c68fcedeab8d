"""Flower, the Celery dashboard, as the service runs it, and its container probe:

    python -m worker.flower
    python -m worker.flower --probe     GET /healthcheck on FLOWER_PORT; exit 0 on 200, else 1

JSON logs (tornado's own log setup is switched off with --logging=none, so the root JSON handler
installed here takes every line), address, port and basic auth from common/settings.py. The
credentials are handed to Flower in-process, never on a command line that `ps` would show.
`/healthcheck` answers "OK" without credentials (for container health checks); every other page,
`/metrics` included, asks for the basic-auth credentials when FLOWER_BASIC_AUTH is set (Flower's
own `/metrics` handler asks for none: it is swapped for one that does, before Flower starts).
Prometheus scrapes it with `basic_auth` in its scrape config. With no worker up at its start,
Flower says so in one line instead of four "Inspect method … failed" warnings.
"""

from __future__ import annotations

import functools
import logging
import os
import sys

from common.logs import configure_logging
from common.probe import http_probe, local_host
from common.settings import settings_or_exit

MANAGED_VARIABLES = ("FLOWER_ADDRESS", "FLOWER_PORT", "FLOWER_BASIC_AUTH")
METRICS_ROUTE = r"/metrics"
log = logging.getLogger("worker.flower")  # `python -m` would name it __main__


def flower_argv(address: str, port: int, basic_auth: str) -> list[str]:
    argv = ["-A", "worker.app", "flower", "--logging=none", f"--address={address}",
            f"--port={port}"]
    if basic_auth:
        argv.append(f"--basic-auth={basic_auth}")
    return argv


def guard_metrics() -> None:
    """Put Flower's `/metrics` behind the same authentication as its other pages.

    Flower builds its application from the module-level list `flower.urls.handlers` (the very
    list `flower.app` imported); the `/metrics` entry is replaced in place, so the route, its
    place before the catch-all and any `--url_prefix` rewriting stay Flower's own.
    """
    from flower import urls
    from flower.views.monitor import Metrics
    from tornado import web

    class AuthenticatedMetrics(Metrics):
        """Flower's metrics, for a user `get_current_user` accepts (basic auth, or OAuth)."""

        @web.authenticated
        async def get(self) -> None:
            await super().get()

    for index, handler in enumerate(urls.handlers):
        if isinstance(handler, tuple) and handler[0] == METRICS_ROUTE:
            urls.handlers[index] = (METRICS_ROUTE, AuthenticatedMetrics, *handler[2:])
            return
    raise RuntimeError(f"Flower has no {METRICS_ROUTE} route to guard: worker/flower.py "
                       "needs a look for this Flower version")


def inspect_only_answering_workers() -> None:
    """Flower inspects all workers at its start (and when its workers page refreshes) with one
    broadcast per method (stats, active_queues, registered, conf), each waiting
    `--inspect_timeout` for replies. With no worker up yet (compose starts Flower beside the
    workers) nobody replies, and Flower logged "Inspect method … failed" four times: no
    failure, nobody there. Here such a broadcast first pings: with no reply it says so once
    and asks nothing (Flower lists a worker from its events once it runs); a worker that
    answered the ping but not an inspection still gets Flower's own warning, and a broker
    error still fails the inspection as before."""
    from flower import app, inspector

    class Inspector(inspector.Inspector):
        async def _inspect_all(self, workername: str | None) -> None:
            if workername is None:
                replies = await self.io_loop.run_in_executor(
                    None, functools.partial(self.capp.control.ping, timeout=self.timeout))
                if not replies:
                    log.info("no worker answered a ping: nothing to inspect yet")
                    return
            await super()._inspect_all(workername)

    if not hasattr(inspector.Inspector, "_inspect_all") or app.Inspector is not (
            inspector.Inspector):
        raise RuntimeError("Flower's Inspector is not what worker/flower.py expects: it "
                           "needs a look for this Flower version")
    app.Inspector = Inspector


def probe() -> int:
    """The flower container's health check: GET /healthcheck (it needs no credentials)."""
    settings = settings_or_exit("flower-health")
    return http_probe("flower", __name__,
                      f"http://{local_host(settings.flower_address)}:{settings.flower_port}"
                      "/healthcheck")


def main(argv: list[str] | None = None) -> int | None:
    if (sys.argv[1:] if argv is None else argv) == ["--probe"]:
        return probe()
    settings = settings_or_exit("flower")
    configure_logging("flower", settings.log_level)
    # Flower also reads FLOWER_* variables itself: an empty FLOWER_BASIC_AUTH would turn into
    # one empty credential, an empty FLOWER_PORT (compose's "${FLOWER_PORT:-}") into a crash.
    # The validated values go in through the arguments instead.
    for name in MANAGED_VARIABLES:
        os.environ.pop(name, None)

    guard_metrics()
    inspect_only_answering_workers()
    from celery.bin.celery import celery

    celery.main(
        args=flower_argv(settings.flower_address, settings.flower_port,
                         settings.flower_basic_auth),
        prog_name="celery",
    )


if __name__ == "__main__":
    sys.exit(main())
