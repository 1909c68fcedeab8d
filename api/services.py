"""What the request handlers use, built once per app: settings, Redis, and a job's lifecycle."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app

from common.lifecycle import Lifecycle, build_lifecycle
from common.queue import make_celery
from common.settings import Settings


@dataclass
class Services:
    settings: Settings
    lifecycle: Lifecycle

    @property
    def redis(self) -> redis.Redis:
        return self.lifecycle.store.redis


def build_services(settings: Settings) -> Services:
    return Services(settings, build_lifecycle(settings, make_celery(settings, "xmlconv-api")))


def services() -> Services:
    return current_app.extensions["xmlconv"]
