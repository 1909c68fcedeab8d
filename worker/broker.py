"""A guard for kombu's Redis transport (kombu 5.7.0, and every release before it that we read):
a worker must not die because Redis stopped under a running job.

What happens without it (issue 18: a redis-server stopped while a job runs, with a pool process
free, so the consumer has a BRPOP in flight): the consumer's connection-loss handler first
`collect()`s the connection — closing its default channel fails at the BRPOP read (a connection
error, ignored), and the transport is detached (`transport.client = None`) — and then
`close()`s it, which closes that channel again; this time the channel restores its unacked
messages (the running job's) and builds a new Redis client for it from `transport.client`,
which is None: `AttributeError: 'NoneType' object has no attribute 'hostname'` in
`Channel._connparams`. An AttributeError is not a connection error, so nothing ignores it: the
worker logs `Unrecoverable error` and exits 1.

The fix, as it would be made upstream: a channel whose transport has been closed has no
connection parameters, and says so with the transport's own connection error, which every
close path ignores (the messages it could not restore stay in the broker's unacked set and are
restored after the visibility timeout; the job itself is queued again by our recovery,
worker/recovery.py, as soon as Redis is back). Applied once, when the worker's Celery app is
imported; kombu's own code is not otherwise changed.
"""

from __future__ import annotations

import functools

from kombu.transport import redis as kombu_redis

_GUARDED = "_xmlconv_closed_transport_guard"


def guard_closed_transport() -> None:
    channel = kombu_redis.Channel
    connparams = channel._connparams
    if getattr(connparams, _GUARDED, False):
        return

    @functools.wraps(connparams)
    def _connparams(self, asynchronous: bool = False) -> dict:
        transport = self.connection
        if transport is None or transport.client is None:
            lost = kombu_redis.get_redis_ConnectionError()  # redis-py's, through kombu
            raise lost("the broker connection of this channel was closed")
        return connparams(self, asynchronous=asynchronous)

    setattr(_connparams, _GUARDED, True)
    channel._connparams = _connparams
