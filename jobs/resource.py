"""The job as its client sees it: the job resource of the HTTP contract (GET /jobs/<id>), which
is also the `data` of the job's webhook. Here, in the shared package, because both the API and
the worker (which sends webhooks) show it; nothing else of HTTP lives outside api/."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from common.logs import utc_timestamp
from common.outbound_urls import shown

from .status import JobStatus
from .store import Job

if TYPE_CHECKING:
    from .lifecycle import OpenedUpload


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else utc_timestamp(epoch)


def _webhook(job: Job) -> dict[str, Any] | None:
    """Where the job's webhook goes and how its delivery went (None without a webhook)."""
    if not job.webhook_url:
        return None
    delivery = job.webhook or {"status": "pending", "attempts": 0, "last_status_code": None}
    return {"url": job.webhook_url, **delivery}


def job_resource(job: Job) -> dict[str, Any]:
    total = job.bytes_total if job.bytes_total is not None else job.input_size
    done = total if job.status == JobStatus.SUCCEEDED else min(job.bytes_done, total)
    percent = round(100.0 * done / total, 1) if total else (
        100.0 if job.status == JobStatus.SUCCEEDED else 0.0)
    source: dict[str, Any] = {
        "filename": job.input_filename,
        "size_bytes": job.input_size,
        "sha256": job.input_sha256 or None,  # None: not read yet, or put straight in the bucket
    }
    progress: dict[str, Any] = {"bytes_done": done, "bytes_total": total, "percent": percent}
    if job.input_url:  # imported: where from (without its query string), and what its run does
        source["url"] = shown(job.input_url)
        progress["stage"] = job.stage or "fetching"
        if progress["stage"] == "fetching" and not job.finished:  # bytes fetched of all (or 0)
            progress["bytes_done"] = job.bytes_done
            progress["percent"] = round(100.0 * min(job.bytes_done, total) / total, 1) if (
                total) else 0.0
    return {
        "id": job.id,
        "status": job.status,
        "format": job.format,
        "options": job.options,
        "input": source,
        "progress": progress,
        "attempts": job.attempts,
        "tag": job.tag,
        "metadata": job.metadata,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "error": job.error,
        "result": job.result,
        "webhook": _webhook(job),
        "links": {"self": f"/jobs/{job.id}", "result": f"/jobs/{job.id}/result"},
    }


def upload_resource(upload: OpenedUpload) -> dict[str, Any]:
    """A direct upload as POST /uploads answers it: where each part goes, and how large it is."""
    parts = []
    for number, url in enumerate(upload.urls, start=1):
        start = (number - 1) * upload.part_size
        parts.append({"part_number": number, "url": url,
                      "size_bytes": min(upload.part_size, upload.size - start)})
    return {
        "id": upload.id,
        "size_bytes": upload.size,
        "part_size": upload.part_size,
        "parts": parts,
        "expires_at": _iso(upload.expires_at),
        "links": {"self": f"/uploads/{upload.id}", "submit": f"/jobs?upload_id={upload.id}"},
    }
