"""Runs one job: claim it, convert input → result, record the outcome.

Plain code over the job store and storage, so that the Celery task stays a one-liner.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from billiard.exceptions import SoftTimeLimitExceeded

from common import errors
from common.jobs import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, JobStore
from common.storage import Storage
from converter import FORMATS, ConversionError

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 0.5  # at most two writes a second to the job record


class JobCancelled(Exception):
    """A client cancelled the job while it ran."""


class RunSuperseded(Exception):
    """Another run owns the job now (or it vanished): this run must stop and write nothing."""


class ProgressReporter:
    """The converter's progress callback: records progress and stops a cancelled run."""

    def __init__(self, store: JobStore, job_id: str, run_id: str, fallback_total: int) -> None:
        self.store = store
        self.job_id = job_id
        self.run_id = run_id
        self.fallback_total = fallback_total
        self.last_write = time.monotonic()

    def __call__(self, bytes_done: int, bytes_total: int) -> None:
        now = time.monotonic()
        if now - self.last_write < PROGRESS_INTERVAL_SECONDS:
            return
        self.last_write = now
        status = self.store.progress(
            self.job_id, self.run_id, bytes_done, bytes_total or self.fallback_total)
        if status == RUNNING:
            return
        if status == CANCELLED:
            raise JobCancelled()
        raise RunSuperseded(status)


@dataclass
class JobRunner:
    store: JobStore
    storage: Storage
    worker_name: str
    delete_input_on_finish: bool

    def run(self, job_id: str) -> None:
        before, run_id = self.store.start(job_id, self.worker_name)
        if before not in (QUEUED, RUNNING):
            log.info("job not run: it is %s", before or "gone")
            return
        if before == RUNNING:
            log.warning("job redelivered: restarting it from the beginning")
        job = self.store.get(job_id)
        if job is None:  # expired between the claim and now
            return
        self.storage.discard_output(job_id)
        log.info("job started", extra={"format": job.format, "input_bytes": job.input_size,
                                       "attempt": job.attempts})
        started = time.monotonic()
        outcome = self._convert(job_id, run_id, job.format, job.options, job.input_size)
        if outcome is None:
            return  # superseded: the run that owns the job does the rest
        status, fields = outcome
        if status == CANCELLED:
            self.storage.delete(job_id)
            log.info("job cancelled while running; its files are removed")
            return
        if not self.store.finish(job_id, run_id, status, **fields):
            # Cancelled (or superseded) at the last moment: the result must not stay around.
            if self.store.status(job_id) == CANCELLED:
                self.storage.delete(job_id)
            log.info("job finished but was no longer this run's; output discarded")
            return
        if self.delete_input_on_finish:
            self.storage.delete_input(job_id)
        log.info("job %s", status, extra={
            "status": status, "duration_ms": round(1000 * (time.monotonic() - started)),
            "error_code": (fields.get("error") or {}).get("code")})

    def _convert(
        self, job_id: str, run_id: str, fmt: str, options: dict, input_size: int
    ) -> tuple[str, dict] | None:
        """Returns (final status, fields for the record), or None when superseded."""
        from converter import convert  # loads lxml: only the worker ever does

        fmt_info = FORMATS[fmt]
        progress = ProgressReporter(self.store, job_id, run_id, input_size)
        try:
            with self.storage.open_input(job_id) as source, \
                    self.storage.write_result(job_id, fmt_info.extension) as dest:
                result = convert(source, dest, fmt, options, progress)
                size = dest.tell()
        except JobCancelled:
            return CANCELLED, {}
        except RunSuperseded as exc:
            log.warning("run superseded (job is %s); stopping", exc.args[0] or "gone")
            return None
        except ConversionError as exc:
            return FAILED, {"error": exc.to_dict()}
        except SoftTimeLimitExceeded:
            return FAILED, {"error": {
                "code": errors.TIME_LIMIT_EXCEEDED,
                "message": "the conversion took longer than the time limit allows"}}
        except errors.StorageError:
            return FAILED, {"error": {
                "code": errors.INPUT_MISSING, "message": "the job's input file is missing"}}
        except Exception:
            log.exception("job failed with an unexpected error")
            return FAILED, {"error": {
                "code": errors.INTERNAL_ERROR, "message": "the conversion failed unexpectedly"}}
        return SUCCEEDED, {"result": {
            "size_bytes": size,
            "content_type": fmt_info.content_type,
            "record_path": result.record_path,
            "records": result.records,
        }}
