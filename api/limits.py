"""Requests per minute per client (a fixed window in Redis), and the RateLimit-* headers.

Every /jobs and /convert request of an authenticated client counts against one counter per
client (its key's `requests_per_minute`; under AUTH_MODE=none the one anonymous client, with
RATE_LIMIT_PER_MINUTE). Over the limit: 429 RATE_LIMITED with Retry-After. Every answer to an
authenticated request, refusals included, carries

    RateLimit-Limit: 120        the client's requests per minute
    RateLimit-Remaining: 117    requests left in the current window
    RateLimit-Reset: 42         seconds until the window resets

Health routes, unknown routes and 401s are neither counted nor given these headers: the limiter
runs after authentication (register_limits() is called after register_auth()) and only for a
request that has a client. The counters live in Redis (jobs/rate_limits.py), so every gunicorn
process and every API replica share them.

One Redis round trip a request: one script counts the request and returns the count with the
counter's time to live, from which the headers are made; under API keys it first checks that
the key still exists. Authentication may take a key's record from its in-process
memory (jobs/api_keys.py `verify`); this check is what refuses a key revoked since then, on
its next request, before counting it.

Not Flask-Limiter: measured on the status poll (bench/loadtest.py), its generic per-request
work cost ~0.5 ms of CPU, as much as the rest of the request, and three round trips where one
does.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from flask import Flask, Response, g, request

from common import errors
from common.errors import ServiceError

from .auth import refuse_revoked
from .services import Services
from .upload import drain

# Fixed window, starting at a client's first request and lasting a minute: INCRBY, and EXPIRE
# when the counter is new. Chosen because:
# - it is one O(1) Lua call per request and one small key per client, whatever the limit
#   (a moving window keeps one entry per request in the window: up to RATE_LIMIT_PER_MINUTE
#   entries per key, and as much Lua work per request);
# - its headers are exact and mean what they say: Remaining is the counter's complement and
#   Reset is the counter's TTL, when the whole allowance comes back (a sliding-window counter
#   only approximates both from two weighted windows; its "reset" is when the next slot frees);
# - its known weakness, up to twice the limit across a window boundary, is harmless here:
#   the expensive resource (conversions) is bounded by MAX_ACTIVE_JOBS, not by this limit.
WINDOW_SECONDS = 60
HEADER_LIMIT = "RateLimit-Limit"
HEADER_REMAINING = "RateLimit-Remaining"
HEADER_RESET = "RateLimit-Reset"

@dataclass(frozen=True)
class Allowance:
    """Where a client stands, right after its request was counted."""

    limit: int
    remaining: int
    reset_seconds: int  # until the window resets (and the full limit is available again)

    @classmethod
    def at(cls, limit: int, reset_at: float, remaining: int,
           now: float | None = None) -> Allowance:
        now = time.time() if now is None else now
        return cls(limit, max(0, remaining), max(0, math.ceil(reset_at - now)))

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


def _body_announced() -> bool:
    return bool(request.content_length) or "chunked" in (
        request.headers.get("Transfer-Encoding") or "").lower()


def register_limits(app: Flask) -> None:
    """Count every request that has a client (call after register_auth)."""
    svc: Services = app.extensions["xmlconv"]
    # Redis down: StoreUnavailable leaves this before_request and api/errors.py answers it with
    # the usual 503 QUEUE_UNAVAILABLE and Retry-After (fail closed: no in-process counters,
    # which would multiply the limit by the number of processes, and no request passing
    # uncounted). Under AUTH_MODE=api_key, authentication usually meets the outage first.
    limiter = svc.jobs.rate_limiter
    keys_on = svc.settings.auth_mode != "none"

    @app.before_request
    def _count_request() -> None:
        tenant = g.get("tenant")
        if tenant is None:
            return  # health and unknown routes: no tenant, no limit
        count = limiter.count(tenant.id, WINDOW_SECONDS, key_must_exist=keys_on)
        if count.revoked:
            raise refuse_revoked()
        counted, ttl_ms = count.requests, count.ttl_ms
        limit = tenant.requests_per_minute
        now = time.time()
        # A counter without a TTL cannot outlive a window: PTTL is -1 only in a race with its
        # expiry; count the full window then.
        reset_at = now + (ttl_ms if ttl_ms >= 0 else WINDOW_SECONDS * 1000) / 1000
        g.allowance = Allowance.at(limit, reset_at, limit - counted, now)
        if counted > limit:
            error = rate_limited(g.allowance)
            if _body_announced():
                # Refused before the body was read. As for QUOTA_EXCEEDED, read (and drop) a
                # bounded part of it so that a client still sending gets this answer rather
                # than a reset connection; then close rather than let gunicorn read the rest.
                drain(request)
                error.headers["Connection"] = "close"
            raise error

    @app.after_request
    def _allowance_headers(response: Response) -> Response:
        allowance = g.get("allowance")
        if allowance is not None:
            response.headers.update(allowance.headers())
        return response
