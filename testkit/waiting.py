"""Free loopback ports and polling until a condition holds."""

from __future__ import annotations

import socket
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.1):
    """Poll `predicate` (its exceptions count as "not yet") until it returns something
    truthy; None after `timeout` (wait_for raises instead)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def wait_for(predicate, timeout: float, message: str, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; fail with `message` after timeout."""
    value = wait_until(predicate, timeout, interval)
    if not value:
        raise AssertionError(f"timed out after {timeout}s: {message}")
    return value
