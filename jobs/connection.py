"""The one way the service opens a Redis connection (job store, rate limits, metrics, heartbeats,
readiness, xmlconv-admin), and the Celery broker's address that matches it.

Without REDIS_SENTINELS, REDIS_URL names the primary. With them, the primary is whichever server
the Sentinels name under REDIS_MASTER_NAME, asked again after every connection error (redis-py's
SentinelConnectionPool): a failover is ridden out by reconnecting, not by restarting. REDIS_URL
then gives only the database number and the primary's password (its host is not used).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import redis
from redis.backoff import ExponentialBackoff
from redis.connection import parse_url
from redis.retry import Retry
from redis.sentinel import Sentinel

from common.settings import Settings

# Short timeouts and two quick retries: a blip is ridden out, an outage turns into a quick 503
# rather than a request thread held through redis-py's default backoff.
_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 10,
                            "health_check_interval": 30}
# A Sentinel that does not answer is skipped for the next one within this long.
SENTINEL_TIMEOUT_SECONDS = 1


def _retry() -> Retry:
    return Retry(ExponentialBackoff(cap=0.25, base=0.05), 2)


def primary_credentials(settings: Settings) -> dict[str, Any]:
    """What REDIS_URL still says with Sentinels: the database, user name and password."""
    parsed = parse_url(settings.redis_url)
    found = {name: parsed[name] for name in ("username", "password") if parsed.get(name)}
    return {"db": int(parsed.get("db") or 0), **found}


def sentinel(settings: Settings) -> Sentinel:
    """The Sentinels of REDIS_SENTINELS (their own password apart from the primary's)."""
    own: dict[str, Any] = {"socket_connect_timeout": SENTINEL_TIMEOUT_SECONDS,
                           "socket_timeout": SENTINEL_TIMEOUT_SECONDS}
    if settings.redis_sentinel_password:
        own["password"] = settings.redis_sentinel_password
    return Sentinel(list(settings.redis_sentinels), sentinel_kwargs=own,
                    **primary_credentials(settings), **_OPTIONS)


def connect(settings: Settings, client_name: str | None = None) -> redis.Redis:
    """The primary, named `client_name` in CLIENT LIST: REDIS_URL's, or the one the Sentinels
    name (asked again after any connection error)."""
    if settings.redis_sentinels:
        return sentinel(settings).master_for(settings.redis_master_name, redis_class=redis.Redis,
                                             decode_responses=True, retry=_retry(),
                                             client_name=client_name)
    return redis.Redis.from_url(settings.redis_url, decode_responses=True, retry=_retry(),
                                client_name=client_name, **_OPTIONS)


def broker_url(settings: Settings) -> str:
    """Celery's broker: REDIS_URL itself, or kombu's Sentinel transport, one `sentinel://`
    address a Sentinel joined by ';' (kombu tries each), the primary's password and database in
    each (kombu reads them from the first); the Sentinels' password goes in
    `broker_transport_options()`."""
    if not settings.redis_sentinels:
        return settings.redis_url
    credentials = primary_credentials(settings)
    auth = ""
    if credentials.get("password"):
        auth = (f"{quote(credentials.get('username') or '', safe='')}:"
                f"{quote(credentials['password'], safe='')}@")
    db = credentials["db"]
    return ";".join(f"sentinel://{auth}{_host(host)}:{port}/{db}"
                    for host, port in settings.redis_sentinels)


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    """The transport options the Sentinel transport needs beside the URL (none without it)."""
    if not settings.redis_sentinels:
        return {}
    own: dict[str, Any] = {"socket_timeout": SENTINEL_TIMEOUT_SECONDS}
    if settings.redis_sentinel_password:
        own["password"] = settings.redis_sentinel_password
    return {"master_name": settings.redis_master_name, "sentinel_kwargs": own}


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# What every verb of the package raises when Redis does not answer (the API answers 503, a run
# is lost and recovered): redis-py's own base class, named here so that no caller imports redis.
StoreUnavailable = redis.RedisError
