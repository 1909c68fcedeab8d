"""The rate limiter's counters: one fixed-window counter per tenant, counted in one Lua call.

The window's policy and its HTTP headers are the API's (api/limits.py); this module only counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from . import keys

# KEYS[1] the tenant's counter; KEYS[2], under API keys, the key's record, which must exist.
# ARGV[1] the window in seconds. Returns {count after this request, milliseconds the counter
# lives on}, or {-1, 0} when the key's record is gone (revoked): then nothing is counted.
_COUNT = """
if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 0 then
    return {-1, 0}
end
local count = redis.call('INCR', KEYS[1])
if count == 1 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return {count, redis.call('PTTL', KEYS[1])}
"""


@dataclass(frozen=True)
class Count:
    revoked: bool  # the API key's record is gone: nothing was counted
    requests: int  # in this window, this one included
    ttl_ms: int  # until the window ends (-1 only in a race with the counter's expiry)


class RateLimiter:
    def __init__(self, client: redis.Redis) -> None:
        self._count = client.register_script(_COUNT)

    def count(self, tenant_id: str, window_seconds: int, *, key_must_exist: bool) -> Count:
        """Count one request of the tenant ("" is the one tenant of AUTH_MODE=none). With
        `key_must_exist`, a revoked API key is refused in the same round trip."""
        record = [keys.api_key(tenant_id)] if key_must_exist else []
        counted, ttl_ms = self._count([counter_key(tenant_id), *record], [window_seconds])
        return Count(counted < 0, max(counted, 0), ttl_ms)


def counter_key(tenant_id: str) -> str:
    """The tenant's counter ("anonymous": the one tenant of AUTH_MODE=none)."""
    return f"{keys.rate_limits()}:{tenant_id or 'anonymous'}"
