"""The Celery side both processes agree on: task names, queue, broker settings.

The API only publishes (by task name, never importing worker code); the worker consumes. Both
build their Celery app from `celery_config()`, so serializer and broker options cannot drift.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import redis
from celery import Celery
from kombu import Exchange, Queue

from common.settings import Settings

from . import keys
from .connection import broker_transport_options, broker_url

CONVERT_TASK = "xmlconv.convert_job"
SWEEP_TASK = "xmlconv.sweep"
QUEUE = "xmlconv"
WEBHOOK_TASK = "xmlconv.deliver_webhook"
# Its own queue, consumed by the webhooks worker alone (worker/webhooks_app.py): deliveries never
# wait behind conversions, and a slow receiver never holds a conversion process.
WEBHOOK_QUEUE = "xmlconv.webhooks"
REQUEST_ID_HEADER = "request_id"  # a custom task header; Celery exposes it on task.request

# A publish that cannot reach the broker fails fast (the client gets 503 and retries; the
# recovery sends it again later), rather than holding a thread through kombu's default schedule.
_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2,
                  "interval_max": 0.5}


def _queue(name: str) -> Queue:
    """A queue as Celery declares its default one: a direct exchange of the same name."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def celery_config(settings: Settings) -> dict[str, Any]:
    return {
        # REDIS_URL, or `sentinel://` addresses with the primary's name in the options.
        "broker_url": broker_url(settings),
        # The broker hands an unacknowledged job to another worker after this long: it must
        # outlast the hard time limit (checked in settings).
        "broker_transport_options": {"visibility_timeout": settings.broker_visibility_timeout,
                                     "unacked_key": keys.broker_unacked(),
                                     "unacked_index_key": keys.broker_unacked_index(),
                                     **broker_transport_options(settings)},
        "broker_connection_timeout": 3,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        "task_default_queue": QUEUE,
        # Both declared (publishers route to either); a conversion worker consumes QUEUE and the
        # webhooks worker WEBHOOK_QUEUE (worker/app.py's consume()).
        "task_queues": [_queue(QUEUE), _queue(WEBHOOK_QUEUE)],
        "task_routes": {WEBHOOK_TASK: {"queue": WEBHOOK_QUEUE}},
        "task_ignore_result": True,  # job state lives in the job store, not a result backend
        "task_send_sent_event": True,
        "enable_utc": True,
    }


def make_celery(settings: Settings, main: str) -> Celery:
    app = Celery(main)
    app.conf.update(celery_config(settings))
    return app


def publish(app: Celery, job_id: str, dispatch: str, request_id: str | None) -> None:
    """Queue a job's conversion by task name. The Celery task id is the job id (one job, one
    task in Flower); `dispatch` tells the worker which queueing of the job this message is."""
    app.send_task(CONVERT_TASK, args=[job_id, dispatch], task_id=job_id,
                  headers={REQUEST_ID_HEADER: request_id}, retry=True,
                  retry_policy=_PUBLISH_RETRY)


def publish_webhook(app: Celery, job_id: str, retries_done: int = 0,
                    countdown: float | None = None) -> None:
    """Queue the delivery of a finished job's webhook (its own queue): the first attempt, or
    with `countdown` the next try after `retries_done` attempts."""
    args = [job_id, retries_done] if retries_done else [job_id]
    app.send_task(WEBHOOK_TASK, args=args, queue=WEBHOOK_QUEUE, countdown=countdown,
                  retry=True, retry_policy=_PUBLISH_RETRY)


def held_conversions(client: redis.Redis, older_than_seconds: float) -> Iterator[tuple[str, str]]:
    """(job id, dispatch) of every conversion message a worker received more than
    `older_than_seconds` ago and has not acknowledged (kombu's Redis transport keeps them in
    `unacked` until the visibility timeout). A live worker claims a job within moments of
    receiving it, so a job still queued behind such a message was received by a process that
    died first (or is held behind a long job): recovery queues it again."""
    cutoff = time.time() - older_than_seconds
    tags = client.zrangebyscore(keys.broker_unacked_index(), "-inf", cutoff)
    if not tags:
        return
    for payload in client.hmget(keys.broker_unacked(), tags):
        try:
            message = json.loads(payload)[0]
            if (message.get("headers") or {}).get("task") != CONVERT_TASK:
                continue
            body = message["body"]
            if (message.get("properties") or {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            args = json.loads(body)[0]
        except (TypeError, ValueError, KeyError, IndexError):
            continue  # gone meanwhile, or not a message of ours
        if len(args) >= 2:
            yield args[0], args[1]
