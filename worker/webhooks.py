"""Delivers a finished job's webhook (Standard Webhooks 1.0): one signed POST per attempt.

    finished job ─announce─▶ WEBHOOK_QUEUE ─▶ attempt ─ 2xx ──────────────────▶ delivered
                                                ▲        ├─ 5xx, 429, no answer ─▶ retry ─┐
                                                └── after WEBHOOK_RETRY_SCHEDULE[n] ◀─────┘
                                                         └─ 410, other 3xx/4xx, URL refused,
                                                            schedule used up ───▶ failed

The event is `{"type": "job.<status>", "timestamp": <when the job finished>, "data": <the job
as GET /jobs/<id> shows it>}`, signed over `id.timestamp.body` with the job owner's webhook
secret (common/signing.py; WEBHOOK_SECRET under AUTH_MODE=none). Its `webhook-id` stays the same
across the retries of the event, so that a receiver can drop a duplicate. Before each attempt the
URL is checked again (common/webhook_urls.py: its host may resolve elsewhere by now); redirects
are never followed and at most 64 KiB of an answer is read. Each attempt is recorded on the job
(`webhook` of the job resource) and logged as one line, never with the secret or the signature.

`attempt()` is one try and decides what comes next; `deliver()` is what the Celery task calls.
"""

from __future__ import annotations

import enum
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from standardwebhooks.webhooks import Webhook

from common.errors import ServiceError
from common.logs import log_context, utc_timestamp
from common.settings import Settings
from common.signing import webhook_secret
from common.webhook_urls import check_url
from jobs import Job, JobStatus, Lifecycle, job_resource

log = logging.getLogger(__name__)

EVENT_TYPES = {JobStatus.SUCCEEDED: "job.succeeded", JobStatus.FAILED: "job.failed",
               JobStatus.CANCELLED: "job.cancelled"}
TIMEOUT = (5.0, 10.0)  # seconds: to connect, and between two bytes of the answer
MAX_ANSWER_BYTES = 64 * 1024  # of an answer's body, read then dropped
USER_AGENT = "its-convert-xml-webhooks/1.0"



class Delivery(enum.StrEnum):
    """The webhook's delivery, as the job resource shows it (`webhook.status`)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class Outcome(enum.StrEnum):
    """What one attempt led to (logged as `outcome`)."""

    DELIVERED = "delivered"  # a 2xx answer
    RETRY = "retry"  # a retry is scheduled
    SCHEDULE_USED_UP = "schedule_used_up"  # would be retried, but no retry is left: failed
    GONE = "gone"  # 410: the receiver asks never to be called again: failed
    REJECTED = "rejected"  # another 3xx or 4xx, or a request that cannot be made: failed
    REFUSED = "refused"  # the URL is not one the service may call (now): failed, nothing sent
    NOTHING = "nothing"  # the job is gone (expired, deleted) or has no webhook


@dataclass(frozen=True)
class Config:
    """What delivery needs from the settings (tests build their own, with short timeouts)."""

    secret_key: str
    default_secret: str  # the jobs of AUTH_MODE=none (owner "") are signed with this
    retry_schedule: tuple[int, ...]
    allow_private: bool
    timeout: tuple[float, float] = TIMEOUT

    @classmethod
    def from_settings(cls, settings: Settings) -> Config:
        return cls(settings.secret_key, settings.webhook_secret,
                   settings.webhook_retry_schedule, settings.webhook_allow_private)

    def secret_for(self, owner: str) -> str:
        return webhook_secret(self.secret_key, owner) if owner else self.default_secret


@dataclass(frozen=True)
class Attempt:
    """What one attempt did and what comes next."""

    outcome: Outcome
    number: int  # 1 for the first attempt at this event
    status_code: int | None = None  # the receiver's answer, if any
    error: str | None = None  # why there was no answer (an exception's class name)
    retry_in: int | None = None  # seconds until the next attempt (outcome Outcome.RETRY)
    delivery: dict[str, Any] | None = None  # as recorded on the job


def message_id(job: Job) -> str:
    """The event's id: a job finishes once, so one event per job, the same on every retry."""
    return f"msg_{job.id}"


def event_body(job: Job) -> str:
    """The event as sent (compact JSON): its type, when the job finished, and the job."""
    event = {
        "type": EVENT_TYPES[job.status],
        "timestamp": utc_timestamp(job.finished_at or time.time()),
        "data": job_resource(job),
    }
    return json.dumps(event, separators=(",", ":"))


def signed_headers(msg_id: str, body: str, secret: str, now: datetime) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
    }


def _read_some(response: requests.Response, limit: int, seconds: float) -> None:
    """Read (and drop) at most `limit` bytes of the answer, for at most about `seconds`: a
    receiver can neither make the worker download a large body nor hold it with a slow one."""
    deadline = time.monotonic() + seconds
    remaining = limit
    try:
        while remaining > 0 and time.monotonic() < deadline:
            chunk = response.raw.read1(min(remaining, 16384), decode_content=False)
            if not chunk:
                return
            remaining -= len(chunk)
    except Exception:  # the status decided the outcome; the body is not needed
        return


def _post(url: str, body: str, headers: dict[str, str], timeout: tuple[float, float]) -> int:
    """The receiver's status code (its answer's body is read up to the cap and dropped);
    requests' exceptions when there is no answer."""
    response = requests.post(url, data=body.encode(), headers=headers, allow_redirects=False,
                             timeout=timeout, stream=True)
    try:
        _read_some(response, MAX_ANSWER_BYTES, timeout[1])
    finally:
        response.close()
    return response.status_code


def _classify(status_code: int) -> Outcome:
    if 200 <= status_code < 300:
        return Outcome.DELIVERED
    if status_code == 429 or status_code >= 500:
        return Outcome.RETRY
    if status_code == 410:
        return Outcome.GONE
    return Outcome.REJECTED


def attempt(lifecycle: Lifecycle, config: Config, job_id: str, retries_done: int) -> Attempt:
    """One attempt at the webhook of a finished job (`retries_done` attempts were made before):
    check the URL, send the signed event, record the delivery on the job and log one line."""
    number = retries_done + 1
    job = lifecycle.get(job_id)
    if job is None or not job.webhook_url or job.status not in EVENT_TYPES:
        log.info("webhook not sent: the job is gone or has no webhook", extra={
            "job_id": job_id, "attempt": number, "outcome": Outcome.NOTHING,
            "job_status": job.status if job else None})
        return Attempt(Outcome.NOTHING, number)

    status_code: int | None = None
    error: str | None = None
    try:
        check_url(job.webhook_url, config.allow_private)
    except ServiceError as exc:
        outcome = Outcome.REFUSED
        error = exc.message
    else:
        body = event_body(job)
        headers = signed_headers(message_id(job), body, config.secret_for(job.owner),
                                 datetime.now(UTC))
        try:
            status_code = _post(job.webhook_url, body, headers, config.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:  # no answer: try again
            outcome, error = Outcome.RETRY, type(exc).__name__
        except (requests.RequestException, ValueError) as exc:  # a request that cannot be made
            outcome, error = Outcome.REJECTED, type(exc).__name__
        else:
            outcome = _classify(status_code)
        if outcome == Outcome.RETRY and retries_done >= len(config.retry_schedule):
            outcome = Outcome.SCHEDULE_USED_UP

    previous = job.webhook or {}
    sent = outcome != Outcome.REFUSED
    delivery = {
        "status": {Outcome.DELIVERED: Delivery.DELIVERED,
                   Outcome.RETRY: Delivery.PENDING}.get(outcome, Delivery.FAILED),
        "attempts": (retries_done + 1) if sent else int(previous.get("attempts") or 0),
        "last_status_code": status_code if sent else previous.get("last_status_code"),
    }
    lifecycle.record_webhook(job.id, delivery)
    retry_in = config.retry_schedule[retries_done] if outcome == Outcome.RETRY else None
    level = logging.INFO if outcome in (Outcome.DELIVERED, Outcome.RETRY) else logging.WARNING
    log.log(level, "webhook %s", outcome, extra={
        "job_id": job.id, "attempt": number, "status_code": status_code, "error": error,
        "outcome": outcome, "retry_in_seconds": retry_in})
    return Attempt(outcome, number, status_code, error, retry_in, delivery)


def deliver(lifecycle: Lifecycle, settings: Settings, job_id: str, retries_done: int,
            retry: Callable[..., Any]) -> Attempt:
    """The webhook task's body: one attempt; `retry(countdown=seconds)` (the task's own
    `retry`, which raises) schedules the next one when there is to be one."""
    with log_context(job_id=job_id):
        result = attempt(lifecycle, Config.from_settings(settings), job_id, retries_done)
    if result.outcome == Outcome.RETRY:
        retry(countdown=result.retry_in)
    return result
