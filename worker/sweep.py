"""The periodic clean-up (run by beat every SWEEP_INTERVAL_SECONDS): files of jobs whose record
has expired (or was never created: an upload the API could not queue and then crashed) are
deleted once they have not changed for a while. Lost runs are not this sweep's: every worker
recovers them within seconds (worker/recovery.py)."""

from __future__ import annotations

import logging

from jobs import Lifecycle

log = logging.getLogger(__name__)


def sweep(lifecycle: Lifecycle) -> None:
    removed = lifecycle.remove_orphans()
    if removed:
        log.info("sweep done", extra={"files_removed": removed})
