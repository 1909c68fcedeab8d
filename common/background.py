"""Calls run on a native thread beside the caller, one at a time and in order: an upload's chunk
is hashed and written to disk while the next one is read from the socket.

hashlib and file writes release the GIL for large buffers, so a second OS thread really runs
in parallel. Under gevent (the API, gunicorn_config.py) the calls go to a thread pool of gevent's
and the caller waits cooperatively, so that other requests go on meanwhile; elsewhere (workers,
tests, the CLI) to a plain thread pool. Measured on a 300 MB upload through the API: reading the
socket, hashing and writing took ~0.3 + 0.2 + 0.1 s one after the other (the writing up to
~0.8 s while the machine lends fresh memory to the page cache); side by side it takes about
the longest of them.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

POOL_THREADS = 4  # per process: two stages of one upload, or one each of a few at once

_lock = threading.Lock()
_pools: dict[str, Any] = {}  # made on first use, in the process that uses it (after any fork)


def _under_gevent() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("threading")


def _start(fn: Callable[..., Any], args: tuple[Any, ...]) -> Callable[[], Any]:
    """Start fn(*args) on a native thread: a function that waits for its result."""
    if _under_gevent():
        pool = _pools.get("gevent")
        if pool is None:
            from gevent.threadpool import ThreadPool

            # Its own pool, not the hub's: that one resolves host names (webhook URLs), which
            # must not queue behind uploads. A full pool makes spawn() wait, cooperatively.
            pool = _pools["gevent"] = ThreadPool(POOL_THREADS)
        return pool.spawn(fn, *args).get
    with _lock:
        pool = _pools.get("threads")
        if pool is None:
            pool = _pools["threads"] = ThreadPoolExecutor(POOL_THREADS, "background")
    return pool.submit(fn, *args).result


class Background:
    """`run(fn, *args)` waits for the previous call to end (raising what it raised), then starts
    this one and returns at once; `wait()` waits for the last. At most one call is in flight,
    so whatever it was handed (a chunk) is the only thing held for it. As a context manager it
    waits on the way out; when the block failed, what the call raised is dropped (the block's
    error is the one that counts)."""

    def __init__(self) -> None:
        self._pending: Callable[[], Any] | None = None

    def run(self, fn: Callable[..., Any], *args: Any) -> None:
        self.wait()
        self._pending = _start(fn, args)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending()

    def __enter__(self) -> Background:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            self.wait()
            return
        with contextlib.suppress(Exception):  # the block's own error propagates
            self.wait()
