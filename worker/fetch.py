"""Fetching a job's input from its `input_url`: one GET, bounded like every request the service
sends out, read as a stream of chunks for storage.

    with open_url(url, limits) as body:    # connected, redirects followed, the answer is 200
        storage.save_input(job_id, body.chunks())    # FetchFailed mid-way: nothing is kept

- **The same rules as webhooks.** The URL, and the target of every redirect, is parsed, resolved
  once and checked by common/outbound_urls.py (public addresses only, unless
  ALLOW_PRIVATE_ADDRESSES), and the connection is made to a checked address
  (worker/outbound_http.py: pinned, SNI and the certificate checked against the name; no proxy,
  no `.netrc`). Redirects (301, 302, 303, 307, 308) are followed, at most MAX_REDIRECTS, each
  target checked as the first URL was: a redirect to a private address fails the fetch
  (`RedirectRefused`) before any connection to it.
- **One deadline, and a minimum rate.** `limits.seconds` (INPUT_FETCH_TIMEOUT) bounds the whole
  fetch — every connection, TLS handshake, answer and the body, redirects included — and over
  every `window_seconds` the body must bring `min_bytes_per_second` × the window
  (INPUT_FETCH_MIN_BYTES_PER_SECOND). A watcher thread ends the connection (shutdown) the moment
  either is missed, so a server trickling one byte at a time is cut off on time, in the head as
  in the body. Resolving a name is not bounded by it (the system resolver's own timeouts).
- **The size limit while streaming.** A Content-Length above `max_bytes` (MAX_UPLOAD_BYTES) is
  refused before the body; a body that passes it is refused at the chunk that does. The body is
  taken as sent (`Accept-Encoding: identity`; a Content-Encoding is refused).

Every failure is FetchFailed with a `reason` (the job's INPUT_FETCH_FAILED `details.reason`):
Refused, RedirectRefused, TooManyRedirects, ConnectionError, TLSError, Timeout, TooSlow,
BadAnswer, HTTPStatus (with `status`), UnsupportedEncoding, TooLarge, Incomplete.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin

from common import errors
from common.errors import ServiceError
from common.outbound_urls import INPUT_URL, parse, resolve

from . import outbound_http

MAX_REDIRECTS = 5
RATE_WINDOW_SECONDS = 10.0
CHUNK_BYTES = 1024 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "its-convert-xml (input_url import)"


class FetchFailed(Exception):
    """The input could not be fetched: `reason` names how, `details` what is known."""

    def __init__(self, reason: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.details = details

    def to_error(self) -> ServiceError:
        return ServiceError(errors.INPUT_FETCH_FAILED, f"the input_url was not fetched: "
                            f"{self.message}", {"reason": self.reason, **self.details})


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 300 * 1024 * 1024
    seconds: float = 600
    min_bytes_per_second: int = 65536
    allow_private: bool = False
    window_seconds: float = RATE_WINDOW_SECONDS

    @classmethod
    def from_settings(cls, settings) -> FetchLimits:
        return cls(max_bytes=settings.max_upload_bytes, seconds=settings.input_fetch_timeout,
                   min_bytes_per_second=settings.input_fetch_min_bytes_per_second,
                   allow_private=settings.allow_private_addresses)


_ENDED = {
    "Timeout": "it took longer than the fetch's deadline ({seconds:g} s)",
    "TooSlow": "it brought less than {min_bytes_per_second} bytes a second over "
               "{window_seconds:g} s",
}


class _Watch:
    """Ends the current connection when the deadline passes, or when a window brings fewer body
    bytes than the minimum rate asks for; `reason` then says which."""

    def __init__(self, limits: FetchLimits, deadline: float) -> None:
        self.limits = limits
        self.deadline = deadline
        self.received = 0  # body bytes so far (written by the reader, read here)
        self.reason: str | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fetch-watch", daemon=True)
        self._thread.start()

    def watch(self, sock: socket.socket) -> None:
        """Watch this connection from now on (a dup of its descriptor: shutting it down ends the
        connection under whatever reads it, TLS or not)."""
        with self._lock:
            self._close_dup()
            self._sock = socket.fromfd(sock.fileno(), sock.family, sock.type)
            if self.reason:
                self._sock.shutdown(socket.SHUT_RDWR)

    def failure(self) -> FetchFailed | None:
        if self.reason is None:
            return None
        message = _ENDED[self.reason].format(**vars(self.limits))
        return FetchFailed(self.reason, message)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        with self._lock:
            self._close_dup()

    def _close_dup(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _end(self, reason: str) -> None:
        with self._lock:
            self.reason = reason
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        window = self.limits.window_seconds
        rate = self.limits.min_bytes_per_second
        start, counted = time.monotonic(), 0
        while True:
            wake = min(self.deadline, start + window) if rate else self.deadline
            if self._stop.wait(max(0.0, wake - time.monotonic())):
                return
            now = time.monotonic()
            if now >= self.deadline:
                self._end("Timeout")
                return
            if rate and now - start >= window:
                if self.received - counted < rate * (now - start):
                    self._end("TooSlow")
                    return
                start, counted = now, self.received


class Body:
    """The answer's body, once the fetch has reached a 200: `total` is its Content-Length (None
    when the server did not say)."""

    def __init__(self, response: http.client.HTTPResponse, watch: _Watch,
                 limits: FetchLimits) -> None:
        self._response = response
        self._watch = watch
        self._limits = limits
        length = response.getheader("Content-Length")
        self.total = int(length) if length and length.strip().isdigit() else None

    def chunks(self) -> Iterator[bytes]:
        """The body, chunk by chunk; FetchFailed as soon as it fails or passes a limit."""
        size = 0
        while True:
            try:
                chunk = self._response.read1(CHUNK_BYTES)
            except http.client.IncompleteRead:
                raise self._watch.failure() or FetchFailed(
                    "Incomplete", "the body ended before its Content-Length") from None
            except (OSError, http.client.HTTPException) as exc:
                raise self._watch.failure() or _failed(exc) from None
            if not chunk:
                break
            size += len(chunk)
            self._watch.received = size
            if size > self._limits.max_bytes:
                raise _too_large(self._limits.max_bytes)
            yield chunk
        # A connection ended by the watcher looks like the end of a body without a length.
        if failure := self._watch.failure():
            raise failure
        if self.total is not None and size != self.total:
            raise FetchFailed("Incomplete", "the body ended before its Content-Length")


def _too_large(max_bytes: int) -> FetchFailed:
    return FetchFailed("TooLarge", f"the input is larger than {max_bytes} bytes, the limit",
                       max_bytes=max_bytes)


def _failed(exc: BaseException) -> FetchFailed:
    if isinstance(exc, outbound_http.NoAnswer):
        reason = exc.reason
    elif isinstance(exc, TimeoutError):
        reason = "Timeout"
    elif isinstance(exc, ssl.SSLError):
        reason = "TLSError"
    elif isinstance(exc, http.client.HTTPException):
        reason = "BadAnswer"
    else:
        reason = "ConnectionError"
    messages = {"Timeout": "no answer in time", "TLSError": "the TLS handshake or certificate "
                "check failed", "BadAnswer": "the server's answer is not valid HTTP",
                "ConnectionError": "the connection failed"}
    return FetchFailed(reason, messages.get(reason, reason))


def _request(target, addresses, deadline: float, watch: _Watch,
             tls: ssl.SSLContext | None) -> tuple[http.client.HTTPConnection,
                                                  http.client.HTTPResponse]:
    sock = outbound_http.connect(target, addresses, deadline, tls)
    watch.watch(sock)
    sock.settimeout(max(0.1, deadline - time.monotonic()) + 1)  # the watcher ends it first
    connection = http.client.HTTPConnection(target.host, target.port)
    connection.sock = sock  # pinned: http.client never connects (nor resolves) by itself
    try:
        connection.putrequest("GET", target.path, skip_host=True, skip_accept_encoding=True)
        for name, value in (("Host", target.host_header), ("Accept-Encoding", "identity"),
                            ("User-Agent", USER_AGENT), ("Connection", "close")):
            connection.putheader(name, value)
        connection.endheaders()
        return connection, connection.getresponse()
    except BaseException:
        connection.close()
        raise


@contextlib.contextmanager
def open_url(url: str, limits: FetchLimits,
             tls: ssl.SSLContext | None = None) -> Iterator[Body]:
    """The body of `url` once the server answers 200 (redirects followed), or FetchFailed."""
    watch = _Watch(limits, time.monotonic() + limits.seconds)
    connection: http.client.HTTPConnection | None = None
    try:
        for hop in range(MAX_REDIRECTS + 1):
            try:
                target = parse(url, INPUT_URL)
                addresses = resolve(target, limits.allow_private, INPUT_URL)
            except ServiceError as exc:
                if hop == 0:
                    raise FetchFailed("Refused", exc.message) from None
                raise FetchFailed("RedirectRefused", f"redirect {hop} was refused: "
                                  f"{exc.message}", redirects=hop) from None
            try:
                connection, response = _request(target, addresses, watch.deadline, watch, tls)
            except (OSError, http.client.HTTPException, outbound_http.NoAnswer) as exc:
                raise watch.failure() or _failed(exc) from None
            if response.status in REDIRECTS:
                location = response.getheader("Location")
                connection.close()
                if not location:
                    raise FetchFailed("BadAnswer", f"a {response.status} redirect without a "
                                      "Location")
                url = urljoin(url, location.strip())
                continue
            if response.status != 200:
                raise FetchFailed("HTTPStatus", f"the server answered {response.status}",
                                  status=response.status)
            encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
            if encoding != "identity":
                raise FetchFailed("UnsupportedEncoding", f"the body is {encoding}-encoded; "
                                  "only an unencoded body is taken", encoding=encoding[:64])
            body = Body(response, watch, limits)
            if body.total is not None and body.total > limits.max_bytes:
                raise _too_large(limits.max_bytes)
            yield body
            return
        raise FetchFailed("TooManyRedirects", f"more than {MAX_REDIRECTS} redirects",
                          max_redirects=MAX_REDIRECTS)
    finally:
        watch.stop()
        if connection is not None:
            connection.close()
