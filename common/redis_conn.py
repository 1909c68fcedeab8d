"""The one way the service opens a Redis connection (job store, heartbeats, readiness)."""

from __future__ import annotations

import redis

from .settings import Settings


def connect(settings: Settings) -> redis.Redis:
    # Short timeouts: a Redis outage must turn into a quick 503, not a hung request thread.
    return redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=10,
        health_check_interval=30,
    )
