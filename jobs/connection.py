"""The one way the service opens a Redis connection (job store, heartbeats, readiness)."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from common.settings import Settings


def connect(settings: Settings, client_name: str | None = None) -> redis.Redis:
    # Short timeouts and two quick retries: a blip is ridden out, an outage turns into a quick
    # 503 rather than a request thread held through redis-py's default backoff.
    return redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=10,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.25, base=0.05), 2),
        client_name=client_name,  # shown by CLIENT LIST
    )


# What every verb of the package raises when Redis does not answer (the API answers 503, a run
# is lost and recovered): redis-py's own base class, named here so that no caller imports redis.
StoreUnavailable = redis.RedisError
