"""Requests per minute per client (Flask-Limiter over Redis), and the RateLimit-* headers.

Every /jobs and /convert request of an authenticated client counts against one counter per
client (its key's `requests_per_minute`; under AUTH_MODE=none the one anonymous client, with
RATE_LIMIT_PER_MINUTE). Over the limit: 429 RATE_LIMITED with Retry-After. Every answer to an
authenticated request, refusals included, carries

    RateLimit-Limit: 120        the client's requests per minute
    RateLimit-Remaining: 117    requests left in the current window
    RateLimit-Reset: 42         seconds until the window resets

Health routes, unknown routes and 401s are neither counted nor given these headers: the limiter
runs after authentication (register_limits() is called after register_auth()) and only for a
request that has a client. The counters live in Redis under common.keys.rate_limits(), so every
gunicorn process and every API replica share them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from flask import Flask, Response, g, request
from flask_limiter import Limiter, RateLimitExceeded, RequestLimit

from common import errors, keys
from common.errors import ServiceError

from .errors import error_response
from .services import Services
from .upload import drain

# Fixed window, starting at a client's first request and lasting a minute (limits' Redis
# storage: INCRBY, and EXPIRE when the counter is new). Chosen because:
# - it is one O(1) Lua call per request and one small key per client, whatever the limit
#   (moving-window keeps one entry per request in the window: up to RATE_LIMIT_PER_MINUTE
#   entries per key, and as much Lua work per request);
# - its headers are exact and mean what they say: Remaining is the counter's complement and
#   Reset is the counter's TTL, when the whole allowance comes back (sliding-window-counter only
#   approximates both from two weighted windows; its "reset" is when the next slot frees up);
# - its known weakness, up to twice the limit across a window boundary, is harmless here:
#   the expensive resource (conversions) is bounded by MAX_ACTIVE_JOBS, not by this limit.
STRATEGY = "fixed-window"
WINDOW = "minute"
HEADER_LIMIT = "RateLimit-Limit"
HEADER_REMAINING = "RateLimit-Remaining"
HEADER_RESET = "RateLimit-Reset"


@dataclass(frozen=True)
class Allowance:
    """Where a client stands, read once per request right after it was counted."""

    limit: int
    remaining: int
    reset_seconds: int  # until the window resets (and the full limit is available again)

    @classmethod
    def of(cls, counted: RequestLimit, now: float | None = None) -> Allowance:
        reset_at, remaining = counted.window  # one GET and one TTL in Redis
        now = time.time() if now is None else now
        return cls(counted.limit.amount, max(0, remaining), max(0, math.ceil(reset_at - now)))

    def headers(self) -> dict[str, str]:
        return {HEADER_LIMIT: str(self.limit), HEADER_REMAINING: str(self.remaining),
                HEADER_RESET: str(self.reset_seconds)}


def rate_limited(allowance: Allowance) -> ServiceError:
    retry_after = max(1, allowance.reset_seconds)
    return ServiceError(errors.RATE_LIMITED,
                        f"more than {allowance.limit} requests in a minute, this client's limit; "
                        f"retry in {retry_after} s",
                        {"requests_per_minute": allowance.limit}, status=429,
                        headers={"Retry-After": str(retry_after)})


def _client_key() -> str:
    """The counter's identity: the API key's id ("" is the anonymous client of AUTH_MODE=none;
    Flask-Limiter skips a limit whose key is empty, hence the name)."""
    return g.client.id or "anonymous"


def _per_minute() -> str:
    """The current client's limit. Flask-Limiter evaluates this for every routed request, before
    `exempt_when`: without a client (health routes) it is no limit at all."""
    client = g.get("client")
    return f"{client.requests_per_minute}/{WINDOW}" if client else ""


def _storage_uri(redis_url: str) -> str:
    # limits spells a Unix socket redis+unix://; with a connection pool given, the URI only
    # picks the storage class.
    return "redis+unix://" + redis_url.removeprefix("unix://") if (
        redis_url.startswith("unix://")) else redis_url


def _body_announced() -> bool:
    return bool(request.content_length) or "chunked" in (
        request.headers.get("Transfer-Encoding") or "").lower()


def register_limits(app: Flask) -> Limiter:
    """Count every request that has a client (call after register_auth)."""
    svc: Services = app.extensions["xmlconv"]

    def remember(counted: RequestLimit) -> None:
        g.allowance = Allowance.of(counted)

    limiter = Limiter(
        _client_key,
        # One limit shared by all of a client's routes ("application" limits are shared: one
        # counter per client, not one per endpoint), read from the client on each request.
        application_limits=[_per_minute],
        application_limits_exempt_when=lambda: "client" not in g,
        strategy=STRATEGY,
        storage_uri=_storage_uri(svc.settings.redis_url),
        # The job store's connection pool: its short timeouts and retries apply here too.
        storage_options={"connection_pool": svc.redis.connection_pool,
                         "key_prefix": keys.rate_limits()},
        # Redis down: fail closed, as every route here that needs Redis does. No in-memory
        # fallback (per-process counters would multiply the limit by the number of processes)
        # and no swallowing (every request would pass uncounted, unlabelled): the storage's
        # redis.RedisError leaves the limiter's before_request and api/errors.py answers it
        # with the usual 503 QUEUE_UNAVAILABLE and Retry-After. (Under AUTH_MODE=api_key,
        # authentication has met the outage first and answered that same 503.)
        swallow_errors=False,
        in_memory_fallback_enabled=False,
        # Our own headers (below): Flask-Limiter's would put Retry-After on every answer,
        # overriding the 202's polling hint, and give Reset as a timestamp, not in seconds.
        headers_enabled=False,
        on_breach=remember,  # before RateLimitExceeded is raised: read the breached counter
    )
    limiter.init_app(app)  # its before_request runs after authentication's, in that order

    @app.before_request
    def _read_allowance() -> None:
        # Runs after the limiter's check, which passed. Read now (two Redis reads) rather than
        # in after_request: a Redis error here is the 503 above, there it would be a 500.
        counted = limiter.current_limit
        if counted is not None:
            remember(counted)

    @app.errorhandler(RateLimitExceeded)
    def _rate_limited(exc: RateLimitExceeded) -> Response:
        breached = exc.limit.limit
        error = rate_limited(g.get("allowance") or Allowance(breached.amount, 0,
                                                             breached.get_expiry()))
        if _body_announced():
            # Refused before the body was read. As for QUOTA_EXCEEDED, read (and drop) a
            # bounded part of it so that a client still sending gets this answer rather than a
            # reset connection; then close rather than let gunicorn read the rest of it.
            drain(request)
            error.headers["Connection"] = "close"
        return error_response(error)

    @app.after_request
    def _allowance_headers(response: Response) -> Response:
        allowance = g.get("allowance")
        if allowance is not None:
            response.headers.update(allowance.headers())
        return response

    return limiter

