"""Runs one job: claim it, fetch its input when it was imported (input_url: worker/fetch.py),
convert input → result, record the outcome.

Plain code over the lifecycle's verbs (jobs/lifecycle.py), so that the Celery task stays a
one-liner. What happens to the job's record and files at each step is the lifecycle's business;
this module only drives the converter and names each way a conversion can end.
"""

from __future__ import annotations

import logging
import time
from dataclasses import fields

from billiard.exceptions import SoftTimeLimitExceeded

from common import errors
from common.errors import ServiceError, StorageError, StorageFull
from common.outbound_urls import shown
from common.settings import Settings
from converter import FORMATS, ConversionError, Limits
from converter.limits import output_allowance
from jobs import JobCancelled, Lifecycle, Run, RunSuperseded, StoreUnavailable

from .fetch import FetchFailed, FetchLimits, open_url
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


def conversion_limits(settings: Settings | None, input_size: int) -> Limits:
    """The converter's limits for a job of `input_size` bytes: the CONVERTER_MAX_* settings,
    and at most OUTPUT_AMPLIFICATION × the input + OUTPUT_ALLOWANCE_BYTES of output."""
    if settings is None:
        return Limits()
    structural = {field.name: getattr(settings, "converter_" + field.name)
                  for field in fields(Limits) if field.name != "max_output_bytes"}
    return Limits(**structural, max_output_bytes=output_allowance(
        input_size, settings.output_amplification, settings.output_allowance_bytes))


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
        result = _fetch(run, settings) if job.input_url else None
        if result is None:
            result = _convert(run, conversion_limits(settings, run.job.input_size or 0))
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


def _fetch(run: Run, settings: Settings | None) -> ServiceError | None:
    """Fetch an imported job's input into storage; None when it is there, else the error the
    job fails with (INPUT_FETCH_FAILED with its reason; nothing of the input is kept)."""
    limits = FetchLimits.from_settings(settings) if settings else FetchLimits()
    url = run.job.input_url or ""
    started = time.monotonic()
    try:
        with open_url(url, limits) as body:
            run.store_fetched_input(body.chunks(), body.total)
    except (JobCancelled, RunSuperseded, StoreUnavailable):
        raise
    except FetchFailed as exc:
        log.info("input not fetched", extra={"input_url": shown(url), "reason": exc.reason})
        return exc.to_error()
    except StorageFull as full:
        return ServiceError(errors.INSUFFICIENT_STORAGE, "the service is short of storage "
                            "space; the input was not kept",
                            {"min_free_bytes": full.min_free_bytes})
    except SoftTimeLimitExceeded:
        return ServiceError(errors.TIME_LIMIT_EXCEEDED,
                            "the fetch took longer than the time limit allows")
    except Exception:
        log.exception("fetching the input failed unexpectedly")
        return ServiceError(errors.INTERNAL_ERROR, "fetching the input failed unexpectedly")
    log.info("input fetched", extra={"input_url": shown(url), "input_bytes": run.job.input_size,
                                     "duration_ms": round(1000 * (time.monotonic() - started))})
    return None


def _convert(run: Run, limits: Limits) -> dict | ServiceError:
    """The result's description, or the error the job fails with. Cancellation and a
    superseded run propagate; so does a Redis outage (the run is then lost, and recovered).
    A failed conversion's partial result is not kept (run.write_result discards it)."""
    from converter import convert  # loads lxml: only the worker ever does

    job = run.job
    fmt = FORMATS[job.format]
    try:
        with run.open_input() as source, run.write_result(fmt.extension) as dest:
            result = convert(source, dest, job.format, job.options, run.progress,
                             limits=limits)
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
