"""Runs one job: claim it, convert input → result, record the outcome.

Plain code over the lifecycle's verbs (jobs/lifecycle.py), so that the Celery task stays a
one-liner. What happens to the job's record and files at each step is the lifecycle's business;
this module only drives the converter and names each way a conversion can end.
"""

from __future__ import annotations

import logging
import time

from billiard.exceptions import SoftTimeLimitExceeded

from common import errors
from common.errors import ServiceError, StorageError
from common.settings import Settings
from converter import FORMATS, ConversionError
from jobs import JobCancelled, Lifecycle, Run, RunSuperseded, StoreUnavailable

from .memory import lift_job_memory_limit, limit_job_memory

log = logging.getLogger(__name__)


class TaskFailed(Exception):
    """Raised from the task after a failure was recorded, so that Celery (and Flower) count the
    task as failed, with the job's code and message. Never retried. Its arguments are plain
    strings, so that Celery can serialize it (and rebuild it) as JSON."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code

    def __str__(self) -> str:
        return f"{self.args[0]}: {self.args[1]}"


class RunLost(Exception):
    """Redis went away under the run: it stops, and the recovery queues the job again once
    Redis is back (worker/recovery.py). Expected, so Celery logs it in one line."""


def run_job(lifecycle: Lifecycle, job_id: str, dispatch: str | None, worker: str,
            settings: Settings | None = None) -> None:
    """`settings`: the limits of the conversion (None: the converter's own defaults)."""
    try:
        _run(lifecycle, job_id, dispatch, worker, settings)
    except StoreUnavailable as exc:
        log.warning("run lost: the job store is unavailable (%s); the job will be queued "
                    "again", type(exc).__name__)
        raise RunLost(type(exc).__name__) from None


def _run(lifecycle: Lifecycle, job_id: str, dispatch: str | None, worker: str,
         settings: Settings | None) -> None:
    run = lifecycle.claim(job_id, dispatch, worker)
    if run is None:
        return
    job = run.job
    log.info("job started", extra={"format": job.format, "input_bytes": job.input_size,
                                   "attempt": job.attempts})
    started = time.monotonic()
    # The conversion's memory ceiling (worker/memory.py), lifted once it has ended.
    limit_job_memory(settings.worker_memory_limit_mb if settings else 0)
    try:
        result = _convert(run)
    except JobCancelled:
        run.cancelled()
        return
    except RunSuperseded as exc:
        log.warning("run stopped: the job is no longer this run's (%s)", exc.args[0].value)
        return
    finally:
        lift_job_memory_limit()
    error = result if isinstance(result, ServiceError) else None
    recorded = run.fail(error) if error else run.succeed(result)
    if not recorded:
        return
    status = "failed" if error else "succeeded"
    log.info("job %s", status, extra={
        "status": status, "duration_ms": round(1000 * (time.monotonic() - started)),
        "error_code": error.code if error else None})
    if error:
        raise TaskFailed(error.code, error.message)


def _convert(run: Run) -> dict | ServiceError:
    """The result's description, or the error the job fails with. Cancellation and a
    superseded run propagate; so does a Redis outage (the run is then lost, and recovered)."""
    from converter import convert  # loads lxml: only the worker ever does

    job = run.job
    fmt = FORMATS[job.format]
    try:
        with run.open_input() as source, run.write_result(fmt.extension) as dest:
            result = convert(source, dest, job.format, job.options, run.progress)
            size = dest.tell()
    except (JobCancelled, RunSuperseded, StoreUnavailable):
        raise
    except ConversionError as exc:
        return ServiceError.from_conversion(exc)
    except SoftTimeLimitExceeded:
        return ServiceError(errors.TIME_LIMIT_EXCEEDED,
                            "the conversion took longer than the time limit allows")
    except MemoryError:
        return ServiceError(errors.MEMORY_LIMIT_EXCEEDED,
                            "the conversion needed more memory than a job may use")
    except StorageError:
        return ServiceError(errors.INPUT_MISSING, "the job's input file is missing")
    except Exception:
        log.exception("job failed with an unexpected error")
        return ServiceError(errors.INTERNAL_ERROR, "the conversion failed unexpectedly")
    return {"size_bytes": size, "content_type": fmt.content_type,
            "record_path": result.record_path, "records": result.records}
