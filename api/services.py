"""What the request handlers use, built once per app: settings, job store, storage, publisher."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from celery import Celery
from flask import current_app

from common.jobs import JobStore
from common.queue import CONVERT_TASK, REQUEST_ID_HEADER, make_celery
from common.redis_conn import connect
from common.settings import Settings
from common.storage import Storage, open_storage

log = logging.getLogger(__name__)

# A publish that cannot reach the broker fails fast (the client gets 503 and retries),
# rather than holding a request thread through kombu's default retry schedule.
_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2,
                  "interval_max": 0.5}


@dataclass
class Services:
    settings: Settings
    redis: redis.Redis
    store: JobStore
    storage: Storage
    celery: Celery

    def publish(self, job_id: str, request_id: str | None) -> None:
        """Queue the conversion by task name; the Celery task id is the job id."""
        self.celery.send_task(
            CONVERT_TASK, args=[job_id], task_id=job_id,
            headers={REQUEST_ID_HEADER: request_id}, retry=True, retry_policy=_PUBLISH_RETRY)


def build_services(settings: Settings) -> Services:
    client = connect(settings)
    return Services(
        settings=settings,
        redis=client,
        store=JobStore(client, result_ttl_seconds=settings.result_ttl_seconds,
                       tombstone_ttl_seconds=settings.tombstone_ttl_seconds),
        storage=open_storage(settings.data_dir),
        celery=make_celery(settings, "xmlconv-api"),
    )


def services() -> Services:
    return current_app.extensions["xmlconv"]
