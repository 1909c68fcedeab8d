"""Delivers a finished job's webhook (Standard Webhooks 1.0): one signed POST per attempt.

    finished job ─announce─▶ WEBHOOK_QUEUE ─▶ attempt ─ 2xx ──────────────────▶ delivered
                                                ▲        ├─ 5xx, 429, no answer ─▶ retry ─┐
                                                │        │  (within the attempt's deadline) │
                                                └── after WEBHOOK_RETRY_SCHEDULE[n] ◀─────┘
                                                ▲        ├─ every slot of the key taken ─▶ wait ─┐
                                                └── after a short countdown (not an attempt) ◀───┘
                                                         └─ 410, other 3xx/4xx, URL refused,
                                                            schedule used up ───▶ failed

Deliveries run apart from conversions: their own queue, consumed only by the webhooks worker
(worker/webhooks_app.py, threads), so a slow receiver never holds a conversion process. Each
attempt has one deadline, WEBHOOK_ATTEMPT_TIMEOUT, for connecting, sending and the answer; and
at most WEBHOOK_MAX_PER_KEY deliveries of one client run at once (jobs/webhook_slots.py): a
delivery over the cap goes back to the queue with a countdown instead of holding a thread.

The event is `{"type": "job.<status>", "timestamp": <when the job finished>, "data": <the job
as GET /jobs/<id> shows it>}`, signed over `id.timestamp.body` with the job owner's webhook
secret (common/signing.py; WEBHOOK_SECRET under AUTH_MODE=none). Its `webhook-id` stays the same
across the retries of the event, so that a receiver can drop a duplicate. Before each attempt the
URL is parsed and its host resolved once and checked again (common/webhook_urls.py: it may
resolve elsewhere by now); the request goes to an address so checked, never to a second
resolution of the name (worker/outbound_http.py), with no proxy and no redirect. Each attempt is
recorded on the job (`webhook` of the job resource) and logged as one line, never with the
secret or the signature.

`attempt()` is one try and decides what comes next; `deliver()` is what the Celery task calls.
"""

from __future__ import annotations

import enum
import json
import logging
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

from common import tracing
from common.errors import ServiceError
from common.logs import log_context, utc_timestamp
from common.outbound_urls import parse, resolve
from common.settings import Settings
from common.signing import webhook_secret
from jobs import Job, JobStatus, Lifecycle, WebhookSlots, job_resource

from . import outbound_http

log = logging.getLogger(__name__)

EVENT_TYPES = {JobStatus.SUCCEEDED: "job.succeeded", JobStatus.FAILED: "job.failed",
               JobStatus.CANCELLED: "job.cancelled"}
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
    WAIT = "wait"  # every slot of the job's client is taken: back to the queue, nothing sent


@dataclass(frozen=True)
class Config:
    """What delivery needs from the settings (tests build their own, with short timeouts)."""

    secret_key: str
    default_secret: str  # the jobs of AUTH_MODE=none (owner "") are signed with this
    retry_schedule: tuple[int, ...]
    allow_private: bool
    attempt_timeout: float = 10.0  # seconds for a whole attempt: connect, send, answer
    tls: ssl.SSLContext | None = None  # None: outbound_http's (certifi's bundle)

    @classmethod
    def from_settings(cls, settings: Settings) -> Config:
        return cls(settings.secret_key, settings.webhook_secret,
                   settings.webhook_retry_schedule, settings.allow_private_addresses,
                   float(settings.webhook_attempt_timeout))

    def secret_for(self, owner: str) -> str:
        return webhook_secret(self.secret_key, owner) if owner else self.default_secret


@dataclass(frozen=True)
class Attempt:
    """What one attempt did and what comes next."""

    outcome: Outcome
    number: int  # 1 for the first attempt at this event
    status_code: int | None = None  # the receiver's answer, if any
    error: str | None = None  # why there was no answer (an exception's class name)
    retry_in: float | None = None  # seconds until the next try (Outcome.RETRY, Outcome.WAIT)
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


def _classify(status_code: int) -> Outcome:
    if 200 <= status_code < 300:
        return Outcome.DELIVERED
    if status_code == 429 or status_code >= 500:
        return Outcome.RETRY
    if status_code == 410:
        return Outcome.GONE
    return Outcome.REJECTED


def _send(job: Job, config: Config) -> tuple[Outcome, int | None, str | None]:
    """Check the URL (resolved once), send the signed event to a checked address: (outcome,
    status code, error)."""
    try:
        target = parse(job.webhook_url)
        addresses = resolve(target, config.allow_private)
    except ServiceError as exc:
        return Outcome.REFUSED, None, exc.message
    body = event_body(job)
    headers = signed_headers(message_id(job), body, config.secret_for(job.owner),
                             datetime.now(UTC))
    try:
        status_code = outbound_http.post(target, addresses, body.encode(), headers,
                                        config.attempt_timeout, config.tls)
    except outbound_http.NoAnswer as exc:  # no answer within the deadline: try again
        return Outcome.RETRY, None, exc.reason
    return _classify(status_code), status_code, None


def attempt(lifecycle: Lifecycle, config: Config, job_id: str, retries_done: int,
            slots: WebhookSlots | None = None) -> Attempt:
    """One attempt at the webhook of a finished job (`retries_done` attempts were made before):
    take one of its client's slots (with `slots`), check the URL, send the signed event, record
    the delivery on the job and log one line."""
    number = retries_done + 1
    job = lifecycle.get(job_id)
    if job is None or not job.webhook_url or job.status not in EVENT_TYPES:
        log.info("webhook not sent: the job is gone or has no webhook", extra={
            "job_id": job_id, "attempt": number, "outcome": Outcome.NOTHING,
            "job_status": job.status if job else None})
        return Attempt(Outcome.NOTHING, number)

    token = None
    if slots is not None:
        token, wait = slots.take(job.owner)
        if token is None:
            # A little later than the first lease could lapse at the latest, spread out so
            # that the waiting deliveries of one client do not all come back at once.
            retry_in = round(min(max(wait, 1.0), config.attempt_timeout) + random.random(), 1)
            log.info("webhook waits: every slot of its client is taken", extra={
                "job_id": job.id, "attempt": number, "outcome": Outcome.WAIT,
                "retry_in_seconds": retry_in})
            return Attempt(Outcome.WAIT, number, retry_in=retry_in)
    try:
        outcome, status_code, error = _send(job, config)
    finally:
        if token is not None:
            slots.give_back(job.owner, token)
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


def deliver(lifecycle: Lifecycle, slots: WebhookSlots | None, settings: Settings, job_id: str,
            retries_done: int, later: Callable[[float, int], Any]) -> Attempt:
    """The webhook task's body: one attempt; `later(countdown, retries_done)` queues the next
    try when there is to be one (a retry on the schedule, or a wait for a free slot, which
    does not count as an attempt)."""
    with log_context(job_id=job_id), tracing.span("webhook attempt", "client", {
            tracing.JOB_ID: job_id, "xmlconv.webhook.attempt": retries_done + 1}) as span:
        result = attempt(lifecycle, Config.from_settings(settings), job_id, retries_done, slots)
        span.set({"xmlconv.webhook.outcome": str(result.outcome),
                  "http.response.status_code": result.status_code,
                  "xmlconv.webhook.error": result.error})
    if result.outcome == Outcome.RETRY:
        later(result.retry_in, retries_done + 1)
    elif result.outcome == Outcome.WAIT:
        later(result.retry_in, retries_done)
    return result
