"""The API's gunicorn worker: gunicorn's gevent worker plus an idle timeout on every client socket.

Used by gunicorn_config.py as `worker_class`. Each connection is a greenlet, so a slow client
costs a little memory, not one of a few threads. A client that sends nothing (or reads nothing
of the answer) for API_CLIENT_TIMEOUT seconds is disconnected:

- before its first request's headers are complete: closed with one INFO line (there is no
  request to answer yet). gunicorn's own deadline also applies there: the headers of a request
  must be in within API_KEEPALIVE seconds in all, however steadily they trickle;
- while the app reads its body: the read raises TimeoutError, which api/upload.py answers with
  408 REQUEST_TIMEOUT (nothing of the upload is kept); then the connection closes;
- while its answer is sent (a stalled download): closed with one INFO line. A client that
  reads, but slower than DOWNLOAD_MIN_BYTES_PER_SECOND over API_CLIENT_TIMEOUT seconds of
  waiting, is closed too (api/paced_socket.py; event `client_too_slow`). Either close is a
  reset: the answer's bytes still in the kernel's buffers are dropped, not sent.

Between two requests on a kept-alive connection the idle timeout is at least API_KEEPALIVE, so
that a load balancer's pooled connections live as long as documented; their end is not logged.
gunicorn would log each of these timeouts as a server error with a traceback.

A request body of known length is read straight from the socket, not through gunicorn's
buffers (api/socket_body.py).

An answer of the app with `Connection: close` closes the connection (gunicorn alone would keep
it open), and so does the API_KEEPALIVE_REQUESTS-th answer on one connection: the client's next
connection goes to whichever process accepts it first, the least busy one as a rule. A
connection kept for ever stays with the process that happened to accept it, and a few busy
ones on one process (a load balancer's pool, a poller) load it while the other idles
(see _closing_connections).

Requests that gunicorn refuses itself, before the app sees them (a malformed request line or
header, a request line over `limit_request_line`, too many or too large headers, an unsupported
Transfer-Encoding, a response header the app got wrong), are answered in the API's JSON error
envelope rather than gunicorn's HTML page: `handle_error` lets gunicorn classify, log and
access-log the error as ever, keeps the status it chose, and writes the envelope instead.

Keep API_KEEPALIVE above 0: at 0 gunicorn reads the headers outside `timeout_ctx()`, so they
have no deadline in all (a client trickling header lines is held), and a silent one is closed
by the idle timeout but logged by gunicorn, traceback included.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gevent
from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker as _GeventWorker

from common import errors
from common.settings import settings_or_exit

from .paced_socket import PacedSocket, ReadTooSlowly
from .socket_body import SocketBody


@dataclass
class _Connection:
    sock: Any
    client: str
    requests: int = 0  # whose headers were awaited so far


# The connection that the current greenlet serves (each greenlet has its own context).
_connection: contextvars.ContextVar[_Connection] = contextvars.ContextVar("connection")


class GeventWorker(_GeventWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = settings_or_exit("api")
        self.client_timeout = settings.api_client_timeout
        self.min_read_rate = settings.download_min_bytes_per_second
        self.keepalive_requests = settings.api_keepalive_requests

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.flask_app = self.wsgi
        self.wsgi = _closing_connections(self.wsgi, self.keepalive_requests)

    def handle_exit(self, sig: Any, frame: Any) -> None:
        """SIGTERM: stop accepting (gunicorn), and end the event streams at once (they would
        otherwise hold the shutdown for the whole API_GRACEFUL_TIMEOUT; their clients
        reconnect elsewhere with Last-Event-ID). A greenlet: not inside the signal handler."""
        super().handle_exit(sig, frame)
        gevent.spawn(self._end_streams)

    def handle_quit(self, sig: Any, frame: Any) -> None:
        super().handle_quit(sig, frame)
        gevent.spawn(self._end_streams)

    def _end_streams(self) -> None:
        from .events import end_streams

        app = getattr(self, "flask_app", None)
        if app is not None:
            end_streams(app)

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        # gunicorn's gevent worker makes the socket blocking without a timeout here; this one
        # gives every read and write on it the idle timeout instead.
        client.settimeout(self.client_timeout)
        _connection.set(_Connection(client, _address(addr)))
        AsyncWorker.handle(self, listener, client, addr)

    @contextlib.contextmanager
    def timeout_ctx(self) -> Iterator[None]:
        """Around reading each request's headers (after discarding what the previous request
        left of its body): gunicorn's deadline of API_KEEPALIVE seconds in all, and a quiet end
        on either timeout."""
        connection = _connection.get()
        first = connection.requests == 0
        connection.requests += 1
        if not first:  # an idle keep-alive connection waits API_KEEPALIVE, even if longer
            connection.sock.settimeout(max(self.client_timeout, self.cfg.keepalive))
        deadline = gevent.Timeout(self.cfg.keepalive)
        deadline.start()
        try:
            yield  # a timeout leaves the request None: gunicorn closes the connection
        except gevent.Timeout as exc:
            if exc is not deadline:
                raise
            if first:
                self._closed(connection, "headers", f"whose request headers were not complete "
                             f"within {self.cfg.keepalive} s")
        except TimeoutError:
            if first:
                self._closed(connection, "headers", f"idle for {self.client_timeout} s before "
                             "its request headers were complete")
        finally:
            deadline.close()
            connection.sock.settimeout(self.client_timeout)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> bool:
        # A body of known length is read straight from the socket (api/socket_body.py); the
        # answer is written through a PacedSocket (the body is read through the parser's own
        # reference to the socket, which stays as it is).
        req.body = SocketBody.replacing(req) or req.body
        if self.min_read_rate:
            sock = PacedSocket(sock, self.min_read_rate, self.client_timeout, self.client_timeout)
        try:
            return super().handle_request(listener_name, req, sock, addr)
        except ReadTooSlowly as slow:
            self._closed(_connection.get(), "response", f"reading its response slower than "
                         f"{slow.min_rate} bytes/s ({slow.sent} bytes in {slow.window:g} s)",
                         event="client_too_slow")
            _abort(_connection.get().sock)
            raise StopIteration from None
        except TimeoutError:
            self._closed(_connection.get(), "response",
                         f"idle for {self.client_timeout} s while its response was sent")
            _abort(_connection.get().sock)
            raise StopIteration from None  # gunicorn's quiet way to close the connection

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn's own answer to a request it could not parse or serve, as JSON."""
        page = _StatusLine(client)
        super().handle_error(req, page, addr, exc)  # classifies, logs, writes to `page` only
        if page.status is None:
            return
        try:
            util.write_nonblock(client, error_answer(page.status, page.reason, exc))
        except Exception:
            self.log.debug("Failed to send error message.")

    def _closed(self, connection: _Connection, phase: str, why: str,
                event: str = "client_timeout") -> None:
        self.log.info("closed a connection %s", why, extra={
            "event": event, "phase": phase, "remote_addr": connection.client})


def _abort(sock: Any) -> None:
    """Make the coming close a reset: what the kernel still holds of the answer (up to a few
    MB of send buffer) is dropped, not trickled out to the slow client before the end."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _address(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return str(addr or "")


def _closing_connections(app: Any, keepalive_requests: int) -> Any:
    """The app, with its `Connection: close` honoured, and every connection closed after
    `keepalive_requests` answers (0: never).

    gunicorn drops the hop-by-hop headers an app sets, Connection included, and keeps the
    connection open: after a refusal whose body was not read (401, 413, 415, 429) it would read
    the rest of that body, and after one whose framing is lost (a malformed chunked body) it
    would parse the rest as a new request and answer that too. Here such an answer says
    `Connection: close`, and the connection closes once it is sent. gunicorn's Response says
    `Connection: close` itself once told to close."""

    def honouring(environ: dict, start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            response = getattr(start_response, "__self__", None)  # gunicorn's Response
            if hasattr(response, "force_close") and (
                    0 < keepalive_requests <= response.req.req_number
                    or any(name.lower() == "connection" and value.strip().lower() == "close"
                           for name, value in headers)):
                response.force_close()
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return honouring


class _StatusLine:
    """Stands in for the client's socket while gunicorn writes its HTML error page: keeps the
    page's status and reason, and sends nothing."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.status: int | None = None
        self.reason = ""

    def sendall(self, data: bytes) -> None:
        if self.status is None:
            parts = bytes(data).split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            if len(parts) >= 2 and parts[1].isdigit():
                self.status, self.reason = int(parts[1]), (parts[2] if len(parts) > 2 else "")

    def __getattr__(self, name: str) -> Any:  # gettimeout, setblocking, …: the real socket's
        return getattr(self._sock, name)


_MALFORMED_BODY = "the body's chunked transfer encoding is malformed"
# What each of gunicorn's refusals tells the client (gunicorn's own text would echo the bytes).
_MESSAGES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    (http_errors.InvalidRequestLine, "the request line is malformed"),
    (http_errors.InvalidRequestMethod, "the request method is not valid"),
    (http_errors.InvalidHTTPVersion, "the HTTP version is not supported"),
    (http_errors.ObsoleteFolding, "a request header is folded over two lines (obsolete)"),
    ((http_errors.InvalidHeader, http_errors.InvalidHeaderName), "a request header is malformed"),
    (http_errors.LimitRequestLine, "the request line (method, URI and version) is too long"),
    (http_errors.LimitRequestHeaders, "the request headers are too many or too large"),
    (http_errors.UnsupportedTransferCoding, "this Transfer-Encoding is not supported"),
    (http_errors.ExpectationFailed, "only 'Expect: 100-continue' is supported"),
    ((http_errors.InvalidChunkSize, http_errors.ChunkMissingTerminator,
      http_errors.InvalidChunkExtension), _MALFORMED_BODY),
    (http_errors.InvalidSchemeHeaders, "the forwarded scheme headers contradict each other"),
    ((http_errors.InvalidProxyLine, http_errors.InvalidProxyHeader), "the PROXY line is invalid"),
    (http_errors.ForbiddenProxyRequest, "PROXY protocol is not accepted from this address"),
)
_CODES = {400: errors.INVALID_REQUEST, 414: errors.INVALID_REQUEST,
          417: errors.INVALID_REQUEST, 431: errors.INVALID_REQUEST, 500: errors.INTERNAL_ERROR}


def error_answer(status: int, reason: str, exc: BaseException) -> bytes:
    """A whole HTTP/1.1 answer carrying the API's error envelope; the connection closes."""
    if status == 500:  # logged by gunicorn with its traceback; never shown
        message = "the server failed unexpectedly"
    else:
        message = next((text for kinds, text in _MESSAGES if isinstance(exc, kinds)),
                       reason.lower() or "the request was refused")
    body = json.dumps(errors.error_body(_CODES.get(status, errors.HTTP_ERROR), message)).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body
