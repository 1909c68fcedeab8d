"""What the request handlers use, built once per app: settings, Redis, the API keys, and a job's
lifecycle."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app

from common.clients import ClientRegistry
from common.lifecycle import Lifecycle, build_lifecycle
from common.queue import make_celery
from common.settings import Settings


@dataclass
class Services:
    settings: Settings
    lifecycle: Lifecycle
    clients: ClientRegistry

    @property
    def redis(self) -> redis.Redis:
        return self.lifecycle.store.redis


def build_services(settings: Settings) -> Services:
    lifecycle = build_lifecycle(settings, make_celery(settings, "xmlconv-api"))
    return Services(settings, lifecycle,
                    ClientRegistry(lifecycle.store.redis, settings.secret_key))


def services() -> Services:
    return current_app.extensions["xmlconv"]
