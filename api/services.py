"""What the request handlers use, built once per app: settings and the jobs package's door
(a job's lifecycle, API keys, the rate limiter, the job figures, the workers' heartbeats)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from common.settings import Settings
from jobs import ApiKeys, JobService, Lifecycle, make_celery, open_service

from .stream_slots import StreamSlots


@dataclass
class Services:
    settings: Settings
    jobs: JobService
    stream_slots: StreamSlots

    @property
    def lifecycle(self) -> Lifecycle:
        return self.jobs.lifecycle

    @property
    def api_keys(self) -> ApiKeys:
        return self.jobs.api_keys


def build_services(settings: Settings) -> Services:
    return Services(settings, open_service(settings, make_celery(settings, "xmlconv-api")),
                    StreamSlots(settings.events_max_streams, settings.events_max_per_key))


def services() -> Services:
    return current_app.extensions["xmlconv"]
