"""The job as the HTTP API shows it (the job resource of the contract)."""

from __future__ import annotations

from typing import Any

from common.jobs import SUCCEEDED, Job
from common.logs import utc_timestamp


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else utc_timestamp(epoch)


def job_resource(job: Job) -> dict[str, Any]:
    total = job.bytes_total if job.bytes_total is not None else job.input_size
    done = total if job.status == SUCCEEDED else min(job.bytes_done, total)
    percent = round(100.0 * done / total, 1) if total else (
        100.0 if job.status == SUCCEEDED else 0.0)
    return {
        "id": job.id,
        "status": job.status,
        "format": job.format,
        "options": job.options,
        "input": {
            "filename": job.input_filename,
            "size_bytes": job.input_size,
            "sha256": job.input_sha256,
        },
        "progress": {"bytes_done": done, "bytes_total": total, "percent": percent},
        "attempts": job.attempts,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "error": job.error,
        "result": job.result,
        "links": {"self": f"/jobs/{job.id}", "result": f"/jobs/{job.id}/result"},
    }
