"""The Celery side both processes agree on: task names, queue, broker settings.

The API only publishes (by task name, never importing worker code); the worker consumes. Both
build their Celery app from `celery_config()`, so serializer and broker options cannot drift.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from .settings import Settings

CONVERT_TASK = "xmlconv.convert_job"
SWEEP_TASK = "xmlconv.sweep"
QUEUE = "xmlconv"
REQUEST_ID_HEADER = "request_id"  # a custom task header; Celery exposes it on task.request


def celery_config(settings: Settings) -> dict[str, Any]:
    return {
        "broker_url": settings.redis_url,
        # The broker hands an unacknowledged job to another worker after this long: it must
        # outlast the hard time limit (checked in settings).
        "broker_transport_options": {"visibility_timeout": settings.broker_visibility_timeout},
        "broker_connection_timeout": 3,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        "task_default_queue": QUEUE,
        "task_ignore_result": True,  # job state lives in the job store, not a result backend
        "task_send_sent_event": True,
        "enable_utc": True,
    }


def make_celery(settings: Settings, main: str) -> Celery:
    app = Celery(main)
    app.conf.update(celery_config(settings))
    return app
