"""Webhook delivery slots: at most WEBHOOK_MAX_PER_KEY deliveries of one client at once.

A delivery takes a slot (a lease that lapses by itself, should its process die mid-attempt)
before it connects and gives it back after; a delivery that finds every slot of its client taken
is not made: it waits in the queue (worker/webhooks.py requeues it with a countdown), so slow
receivers of one client hold neither another client's deliveries nor a worker thread.
"""

from __future__ import annotations

import uuid

import redis

from . import keys

# KEYS[1] the client's slots. ARGV[1] the cap, ARGV[2] the lease in ms, ARGV[3] the token.
# Returns 0 when the slot is taken, else the ms until the first lease lapses (a wait hint).
# Redis' clock, so that every host agrees on when a lease lapses.
_TAKE = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
    return 0
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(first[2]) - now)
"""


class WebhookSlots:
    def __init__(self, client: redis.Redis, per_key: int, lease_seconds: float) -> None:
        self._client = client
        self._take = client.register_script(_TAKE)
        self.per_key = per_key
        self.lease_ms = int(lease_seconds * 1000)

    def take(self, owner: str) -> tuple[str | None, float]:
        """(a token, 0) when the owner had a free slot, else (None, seconds until the first of
        its leases lapses at the latest)."""
        token = uuid.uuid4().hex
        wait_ms = int(self._take([keys.webhook_slots(owner)],
                                 [self.per_key, self.lease_ms, token]))
        return (token, 0.0) if wait_ms == 0 else (None, wait_ms / 1000)

    def give_back(self, owner: str, token: str) -> None:
        self._client.zrem(keys.webhook_slots(owner), token)

    def in_use(self, owner: str) -> int:
        """Leases held now (lapsed ones included until the next take)."""
        return int(self._client.zcard(keys.webhook_slots(owner)))
