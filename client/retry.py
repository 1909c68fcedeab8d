"""When to ask again: `Retry-After` parsing and the polling backoff. Pure functions."""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

RETRY_STATUSES = (429, 503)  # the server says when to come back (Retry-After)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds ("5") or an HTTP-date
    ("Wed, 21 Oct 2026 07:28:00 GMT", counted from `now`); None when absent or unreadable.
    Never negative."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT; "-0000" parses as naive
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


@dataclass
class Backoff:
    """Pauses between polls: `first`, growing by `factor`, never above `ceiling` (which a
    server's Retry-After hint lowers, never raises)."""

    first: float = 0.2
    factor: float = 1.5
    ceiling: float = 5.0

    def __post_init__(self) -> None:
        self._next = self.first

    def hint(self, seconds: float | None) -> None:
        """The server's Retry-After on a pending job: poll at least that often."""
        if seconds is not None and seconds > 0:
            self.ceiling = min(self.ceiling, seconds)

    def pause(self) -> float:
        pause = min(self._next, self.ceiling)
        self._next = min(self._next * self.factor, self.ceiling)
        return pause


def retry_delay(attempt: int, retry_after: float | None, base: float = 1.0,
                ceiling: float = 30.0) -> float:
    """How long to wait before retry number `attempt` (0 for the first retry) of a 429/503:
    the server's Retry-After when it gave one, else `base` doubling up to `ceiling`."""
    if retry_after is not None:
        return retry_after
    return min(base * (2 ** attempt), ceiling)
