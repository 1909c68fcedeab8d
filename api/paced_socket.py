"""A floor under the rate at which a client reads an answer (a download, mostly).

A client that reads nothing for API_CLIENT_TIMEOUT seconds is cut by the idle timeout
(api/gunicorn_worker.py); one that reads a few bytes now and then never is, and holds its
connection, its greenlet and the result's file (or object store stream) for as long as it likes:
a 300 MB result read at 1 byte a second is ten years. `PacedSocket` stands in for the client's
socket while an answer is written, and counts only the time spent *waiting for the client*
(blocked in a send, not the time the app takes to produce the next block): within each
`window` seconds of such waiting the client must take `min_rate × window` bytes, or the send
raises `ReadTooSlowly` (a TimeoutError: the worker closes the connection, as after the idle
timeout). A window starts again each time its bytes are in, so a client that was fast at first
banks nothing: once it slows down, it is cut within two windows of waiting at most.

No gevent here: the socket's own timeout bounds each wait (gevent's socket honours it
cooperatively), and sendfile() waits in select's poll (which gevent patches), so the class is
tested on a plain socket pair (tests/unit/test_api_paced_socket.py).
"""

from __future__ import annotations

import io
import os
import select
import time
from typing import Any

BLOCK = 64 * 1024  # bytes read and sent at a time from a file without a descriptor
SENDFILE_BLOCK = 4 * 1024 * 1024  # bytes one os.sendfile() may send (it sends what fits)


class ReadTooSlowly(TimeoutError):
    """The client read less than the minimum within a window of waiting."""

    def __init__(self, sent: int, window: float, min_rate: int) -> None:
        super().__init__(f"read {sent} bytes in {window:g} s of waiting, under "
                         f"{min_rate} bytes/s")
        self.sent = sent
        self.window = window
        self.min_rate = min_rate


class PacedSocket:
    """The client's socket for writing an answer: send, sendall and sendfile paced; anything
    else (fileno, settimeout, …) is the socket's own. `idle_timeout` is the socket's timeout
    outside (API_CLIENT_TIMEOUT); `window` is at most that."""

    def __init__(self, sock: Any, min_rate: int, window: float, idle_timeout: float) -> None:
        self._sock = sock
        self._min_rate = min_rate
        self._window = window
        self._quota = min_rate * window
        self._idle_timeout = idle_timeout
        self._waited = 0.0  # seconds spent in sends within the current window
        self._sent = 0  # bytes sent within the current window

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def _limit(self) -> float:
        """How long the next wait for the client may last."""
        return max(min(self._window - self._waited, self._idle_timeout), 0.001)

    def _too_slow(self, timeout: float) -> TimeoutError:
        if timeout < self._idle_timeout:
            return ReadTooSlowly(self._sent, self._window, self._min_rate)
        return TimeoutError("timed out")  # a whole idle timeout without taking a byte

    def _count(self, sent: int) -> None:
        self._sent += sent
        if self._sent >= self._quota:  # this window's bytes are in: the next one starts
            self._waited, self._sent = 0.0, 0

    def send(self, data: Any, flags: int = 0) -> int:
        timeout = self._limit()
        self._sock.settimeout(timeout)
        started = time.monotonic()
        try:
            count = self._sock.send(data, flags)
        except TimeoutError:
            if timeout < self._idle_timeout:
                raise ReadTooSlowly(self._sent, self._window, self._min_rate) from None
            raise  # a whole idle timeout without taking a byte: the idle timeout's case
        finally:
            self._waited += time.monotonic() - started
            self._sock.settimeout(self._idle_timeout)
        self._count(count)
        return count

    def sendall(self, data: Any, flags: int = 0) -> None:
        view = memoryview(data).cast("B")
        while view:
            view = view[self.send(view, flags):]

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """As socket.sendfile: the file's bytes from `offset`, `count` of them or to its end.
        A file with a descriptor goes out through os.sendfile, from the page cache to the
        socket with no copy in between; anything else is read and sent a block at a time."""
        try:
            source = file.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            return self._send_blocks(file, offset, count)
        self._sock.settimeout(self._idle_timeout)  # as after send(): the descriptor never blocks
        total = 0
        while count is None or total < count:
            size = SENDFILE_BLOCK if count is None else min(SENDFILE_BLOCK, count - total)
            started = time.monotonic()
            try:
                sent: int | None = os.sendfile(self._sock.fileno(), source, offset + total,
                                               size)
            except BlockingIOError:
                sent = None
            self._waited += time.monotonic() - started  # as send() counts its calls
            if sent is None:  # the socket's buffer is full: wait until the client reads
                self._wait_writable()
                continue
            if not sent:  # the file's end
                break
            total += sent
            self._count(sent)
        file.seek(offset + total)
        return total

    def _wait_writable(self) -> None:
        """Until the socket takes bytes again, counted as waiting for the client. select's
        poll is gevent's own (cooperative) once it has patched the standard library."""
        timeout = self._limit()
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLOUT)
        started = time.monotonic()
        try:
            ready = poller.poll(timeout * 1000)
        finally:
            self._waited += time.monotonic() - started
        if not ready:
            raise self._too_slow(timeout)

    def _send_blocks(self, file: Any, offset: int, count: int | None) -> int:
        file.seek(offset)
        total = 0
        while count is None or total < count:
            block = file.read(BLOCK if count is None else min(BLOCK, count - total))
            if not block:
                break
            self.sendall(block)
            total += len(block)
        file.seek(offset + total)
        return total
