"""Flower, the Celery dashboard, as the service runs it:

    python -m worker.flower

JSON logs (tornado's own log setup is switched off with --logging=none, so the root JSON handler
installed here takes every line), address, port and basic auth from common/settings.py. The
credentials are handed to Flower in-process, never on a command line that `ps` would show.
`/healthcheck` answers "OK" without credentials (for container health checks).
"""

from __future__ import annotations

import os
import sys

from common.logs import configure_logging
from common.settings import settings_or_exit

MANAGED_VARIABLES = ("FLOWER_ADDRESS", "FLOWER_PORT", "FLOWER_BASIC_AUTH")


def flower_argv(address: str, port: int, basic_auth: str) -> list[str]:
    argv = ["-A", "worker.app", "flower", "--logging=none", f"--address={address}",
            f"--port={port}"]
    if basic_auth:
        argv.append(f"--basic-auth={basic_auth}")
    return argv


def main() -> None:
    settings = settings_or_exit("flower")
    configure_logging("flower", settings.log_level)
    # Flower also reads FLOWER_* variables itself: an empty FLOWER_BASIC_AUTH would turn into
    # one empty credential, an empty FLOWER_PORT (compose's "${FLOWER_PORT:-}") into a crash.
    # The validated values go in through the arguments instead.
    for name in MANAGED_VARIABLES:
        os.environ.pop(name, None)

    from celery.bin.celery import celery

    celery.main(
        args=flower_argv(settings.flower_address, settings.flower_port,
                         settings.flower_basic_auth),
        prog_name="celery",
    )


if __name__ == "__main__":
    sys.exit(main())
