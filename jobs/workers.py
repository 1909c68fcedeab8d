"""Worker heartbeats in Redis: workers write them, /health/ready reads them.

A sorted set maps each worker's hostname to the time its heartbeat lapses; the set itself
expires when no worker has beaten for a whole period, so a dead fleet leaves nothing behind.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from common.logs import utc_timestamp

from . import keys


def beat(client: redis.Redis, hostname: str, ttl_seconds: int, info: dict[str, Any]) -> None:
    now = time.time()
    with client.pipeline() as pipe:
        pipe.zadd(keys.worker_heartbeats(), {hostname: now + ttl_seconds})
        pipe.zremrangebyscore(keys.worker_heartbeats(), "-inf", now)
        pipe.expire(keys.worker_heartbeats(), ttl_seconds)
        pipe.set(keys.worker_info(hostname),
                 json.dumps({**info, "last_seen": utc_timestamp(now)}), ex=ttl_seconds)
        pipe.execute()


def forget(client: redis.Redis, hostname: str) -> None:
    with client.pipeline() as pipe:
        pipe.zrem(keys.worker_heartbeats(), hostname)
        pipe.delete(keys.worker_info(hostname))
        pipe.execute()


def live_workers(client: redis.Redis) -> list[dict[str, Any]]:
    """Workers whose heartbeat has not lapsed, with what each said about itself."""
    names = client.zrangebyscore(keys.worker_heartbeats(), time.time(), "+inf")
    if not names:
        return []
    infos = client.mget([keys.worker_info(name) for name in names])
    return [{"hostname": name, **(json.loads(info) if info else {})}
            for name, info in zip(names, infos, strict=True)]


def beat_tick(client: redis.Redis, hostname: str, ttl_seconds: int) -> None:
    """Celery beat is alive and scheduling (one beat per deployment)."""
    client.set(keys.beat_heartbeat(),
               json.dumps({"hostname": hostname, "last_seen": utc_timestamp(time.time())}),
               ex=ttl_seconds)


def beat_seen(client: redis.Redis) -> dict[str, Any] | None:
    """What the beat's last heartbeat said, or None when it lapsed."""
    value = client.get(keys.beat_heartbeat())
    return json.loads(value) if value else None


class Workers:
    """The workers' and beat's signs of life: written by them, read by readiness, metrics and
    the probes."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def beat(self, hostname: str, ttl_seconds: int, info: dict[str, Any]) -> None:
        beat(self._redis, hostname, ttl_seconds, info)

    def forget(self, hostname: str) -> None:
        forget(self._redis, hostname)

    def live(self) -> list[dict[str, Any]]:
        return live_workers(self._redis)

    def beat_tick(self, hostname: str, ttl_seconds: int) -> None:
        beat_tick(self._redis, hostname, ttl_seconds)

    def beat_seen(self) -> dict[str, Any] | None:
        return beat_seen(self._redis)
