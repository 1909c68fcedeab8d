"""`make run`'s first step (scripts/run_stack.py): check the settings, decide whether Redis must
be started here (only when REDIS_URL does not answer and is local), and say what a newcomer
needs to know before using the stack: the stage, where each part listens, and what asks for
credentials and what does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import redis

from common.settings import Settings, settings_or_exit

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Plan:
    settings: Settings
    redis_port: int | None  # the port of the redis-server to start here; None: REDIS_URL answers
    banner: list[str]


class RedisUnreachable(Exception):
    """REDIS_URL names a Redis on another host that does not answer."""


def plan() -> Plan:
    """Exits 2 with a JSON line naming the variable on a bad setting."""
    settings = settings_or_exit("make-run")
    url = urlsplit(settings.redis_url)
    shown = _without_password(settings.redis_url)
    try:
        redis.Redis.from_url(settings.redis_url, socket_connect_timeout=1).ping()
        port, redis_note = None, f"Redis: using the one at {shown}"
    except redis.RedisError:
        if url.hostname not in LOCAL_HOSTS:
            raise RedisUnreachable(f"REDIS_URL ({shown}) does not answer") from None
        port = url.port or 6379
        redis_note = f"Redis: starting redis-server on port {port} (data in var/redis)"
    return Plan(settings, port, banner(settings, redis_note))


def banner(settings: Settings, redis_note: str) -> list[str]:
    api = "http://" + settings.api_bind.replace("0.0.0.0", "127.0.0.1")
    flower_host = settings.flower_address.replace("0.0.0.0", "127.0.0.1")
    flower = f"http://{flower_host}:{settings.flower_port}"
    if settings.auth_mode == "none":
        keys = "API keys: not required (AUTH_MODE=none): anyone who reaches the API may submit"
    else:
        keys = ("API keys: required on /jobs and /convert (AUTH_MODE=api_key); make one with "
                "`.venv/bin/xmlconv-admin keys create NAME`")
    if settings.metrics_token:
        metrics = f"{api}/metrics: asks for `Authorization: Bearer $METRICS_TOKEN`"
    elif settings.deploy_env == "development":
        metrics = f"{api}/metrics: open, no token (development without METRICS_TOKEN)"
    else:
        metrics = f"{api}/metrics: off (404) until METRICS_TOKEN is set"
    if settings.flower_basic_auth:
        flower_auth = "asks for the FLOWER_BASIC_AUTH user and password"
    else:
        flower_auth = "asks for no password (FLOWER_BASIC_AUTH is empty)"
    return [
        f"stage: {settings.deploy_env} (DEPLOY_ENV)",
        f"API: {api} (ready when {api}/health/ready answers 200)",
        keys,
        metrics,
        f"Flower: {flower}, {flower_auth}",
        redis_note,
        f"Data: {settings.data_dir}",
        "Ctrl-C stops the API, Flower, beat, the worker, then Redis",
    ]


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":**@", 1)
    return parts._replace(netloc=netloc).geturl()
