"""The API's gunicorn worker: gunicorn's gevent worker plus an idle timeout on every client socket.

Used by gunicorn_config.py as `worker_class`. Each connection is a greenlet, so a slow client
costs a little memory, not one of a few threads. A client that sends nothing (or reads nothing
of the answer) for API_CLIENT_TIMEOUT seconds is disconnected:

- before its first request's headers are complete: closed with one INFO line (there is no
  request to answer yet). gunicorn's own deadline also applies there: the headers of a request
  must be in within API_KEEPALIVE seconds in all, however steadily they trickle;
- while the app reads its body: the read raises TimeoutError, which api/upload.py answers with
  408 REQUEST_TIMEOUT (nothing of the upload is kept); then the connection closes;
- while its answer is sent (a stalled download): closed with one INFO line.

Between two requests on a kept-alive connection the idle timeout is at least API_KEEPALIVE, so
that a load balancer's pooled connections live as long as documented; their end is not logged.
gunicorn would log each of these timeouts as a server error with a traceback.

Keep API_KEEPALIVE above 0: at 0 gunicorn reads the headers outside `timeout_ctx()`, so they
have no deadline in all (a client trickling header lines is held), and a silent one is closed
by the idle timeout but logged by gunicorn, traceback included.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gevent
from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.ggevent import GeventWorker as _GeventWorker

from common.settings import settings_or_exit


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
        self.client_timeout = settings_or_exit("api").api_client_timeout

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
        try:
            return super().handle_request(listener_name, req, sock, addr)
        except TimeoutError:
            self._closed(_connection.get(), "response",
                         f"idle for {self.client_timeout} s while its response was sent")
            raise StopIteration from None  # gunicorn's quiet way to close the connection

    def _closed(self, connection: _Connection, phase: str, why: str) -> None:
        self.log.info("closed a connection %s", why, extra={
            "event": "client_timeout", "phase": phase, "remote_addr": connection.client})


def _address(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return str(addr or "")
