"""The periodic clean-up (run by beat every SWEEP_INTERVAL_SECONDS).

- Files of jobs whose record has expired (or was never created: an upload the API could not
  queue and then crashed) are deleted once they have not changed for a while.
- A running job whose worker vanished without the broker redelivering it (its progress stopped
  for longer than the visibility timeout) is failed with WORKER_LOST instead of running forever.
"""

from __future__ import annotations

import logging

from common import errors
from common.jobs import ANY_RUN, FAILED, RUNNING, JobStore
from common.logs import log_context
from common.settings import Settings
from common.storage import Storage

log = logging.getLogger(__name__)

ORPHAN_GRACE_SECONDS = 3600  # an upload being written right now is never older than this


def sweep(store: JobStore, storage: Storage, settings: Settings) -> None:
    removed = 0
    for job_id in storage.expired(ORPHAN_GRACE_SECONDS):
        if store.get(job_id) is None:
            storage.delete(job_id)
            removed += 1

    lost = 0
    # Past the visibility timeout the broker would have redelivered a job whose worker died;
    # a job still silent a minute after that has no worker left to finish it.
    for job_id in store.stale_unfinished(settings.broker_visibility_timeout + 60):
        job = store.get(job_id)
        if job is None:
            store.drop_from_active(job_id)
        elif job.status == RUNNING:
            with log_context(job_id=job_id):
                if store.finish(job_id, ANY_RUN, FAILED, error={
                        "code": errors.WORKER_LOST,
                        "message": "the worker running this job stopped answering"}):
                    storage.discard_output(job_id)
                    log.warning("job failed: its worker was lost")
                    lost += 1
    if removed or lost:
        log.info("sweep done", extra={"files_removed": removed, "jobs_lost": lost})
