"""What the request handlers use, built once per app: settings and the jobs package's door
(a job's lifecycle, API keys, the rate limiter, the job figures, the workers' heartbeats)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from common.settings import Settings
from jobs import ApiKeys, JobService, Lifecycle, make_celery, open_service


@dataclass
class Services:
    settings: Settings
    jobs: JobService

    @property
    def lifecycle(self) -> Lifecycle:
        return self.jobs.lifecycle

    @property
    def api_keys(self) -> ApiKeys:
        return self.jobs.api_keys


def build_services(settings: Settings) -> Services:
    return Services(settings, open_service(settings, make_celery(settings, "xmlconv-api")))


def services() -> Services:
    return current_app.extensions["xmlconv"]
