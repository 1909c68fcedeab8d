"""The event streams one API process holds (GET /jobs/<id>/events, api/events.py): at most
EVENTS_MAX_STREAMS in all (503 STREAMS_BUSY beyond) and EVENTS_MAX_PER_KEY of one API key
(429 TOO_MANY_STREAMS), so that a stream, which holds a connection and a greenlet for minutes,
cannot take the connections (gunicorn's `worker_connections`) that other requests and other
clients need. Counted in the process: free, and a refused client polls instead."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from common import errors
from common.errors import ServiceError

RETRY_AFTER_SECONDS = 5  # a refused stream: poll meanwhile, try a stream again after this


class StreamSlots:
    """This process's streams: at most `max_streams` in all and `max_per_key` of one key."""

    def __init__(self, max_streams: int, max_per_key: int) -> None:
        self.max_streams = max_streams
        self.max_per_key = max_per_key
        self._per_key: dict[str, int] = {}
        self._lock = threading.Lock()
        self.held = 0

    @contextlib.contextmanager
    def take(self, key: str) -> Iterator[None]:
        """Hold a slot for the block, or raise 503 STREAMS_BUSY / 429 TOO_MANY_STREAMS."""
        with self._lock:
            if self.held >= self.max_streams:
                raise ServiceError(
                    errors.STREAMS_BUSY, "this server holds as many event streams as it may; "
                    "poll GET /jobs/<id> instead, or retry later",
                    {"max_streams": self.max_streams}, status=503,
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            if self._per_key.get(key, 0) >= self.max_per_key:
                raise ServiceError(
                    errors.TOO_MANY_STREAMS, f"this API key already holds {self.max_per_key} "
                    "event streams here, its limit; poll GET /jobs/<id> instead",
                    {"max_streams_per_key": self.max_per_key}, status=429,
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            self.held += 1
            self._per_key[key] = self._per_key.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self.held -= 1
                left = self._per_key[key] - 1
                if left:
                    self._per_key[key] = left
                else:
                    del self._per_key[key]
