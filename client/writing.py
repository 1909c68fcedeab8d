"""A download's writes on a thread of their own, one in flight: the next chunk is received while
this one is written (file writes release the GIL). Measured on a 256 MB result: receiving took
~0.15 s and writing ~0.07 s (up to ~0.5 s while the machine lends fresh memory to the page
cache), one after the other before."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import IO


class WriteBehind:
    """`write(chunk)` waits for the previous write (raising what it raised), then hands this one
    to the thread; `flush()` waits for the last, and so does leaving the `with` block."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._thread = ThreadPoolExecutor(1, "xmlconv-download")
        self._pending: Future[int] | None = None

    def write(self, chunk: bytes) -> None:
        self.flush()
        self._pending = self._thread.submit(self._out.write, chunk)

    def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            if kind is None:
                self.flush()
            elif self._pending is not None:
                # A write that failed counts more than a broken connection (which would be
                # resumed from bytes that were never written); an interrupt counts most.
                failed = self._pending.exception()
                if failed is not None and issubclass(kind, Exception):
                    raise failed
        finally:
            self._thread.shutdown(wait=True)
