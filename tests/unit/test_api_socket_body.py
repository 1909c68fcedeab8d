"""api/socket_body.py under gunicorn's own request parser, on a real socket pair: the body as sent,
however it is read, and not a byte further (the next request on the connection is parsed where
the body ends); a body cut short or a silent client end the connection, as gunicorn's reader
did."""

from __future__ import annotations

import socket
import threading

import pytest
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser

from api.socket_body import SocketBody

BODY = b"".join(b"<r n='%d'>line %d</r>\n" % (n, n) for n in range(40_000))  # ~0.9 MB
NEXT = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


def head(length: int, extra: str = "") -> bytes:
    return (f"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n").encode()


class Connection:
    """A socket pair: the client's end sends in a thread, gunicorn's parser reads the other."""

    def __init__(self, *pieces: bytes, close: bool = False, timeout: float = 5) -> None:
        self.client, self.server = socket.socketpair()
        self.server.settimeout(timeout)
        self.thread = threading.Thread(target=self._send, args=(pieces, close), daemon=True)
        self.thread.start()
        self.parser = RequestParser(Config(), self.server, ("127.0.0.1", 40000))

    def _send(self, pieces: tuple[bytes, ...], close: bool) -> None:
        for piece in pieces:
            self.client.sendall(piece)
        if close:
            self.client.shutdown(socket.SHUT_WR)

    def request(self):
        req = next(self.parser)
        body = SocketBody.replacing(req)
        if body is not None:
            req.body = body
        return req

    def close(self) -> None:
        self.thread.join(5)
        self.client.close()
        self.server.close()


@pytest.fixture
def connect():
    made: list[Connection] = []

    def make(*pieces: bytes, **kwargs) -> Connection:
        made.append(Connection(*pieces, **kwargs))
        return made[-1]

    yield make
    for connection in made:
        connection.close()


@pytest.mark.parametrize("size", [1, 1000, 65536, 1 << 20, None])
def test_the_body_as_sent_then_the_next_request(connect, size):
    connection = connect(head(len(BODY)) + BODY[:1000], BODY[1000:] + NEXT)
    req = connection.request()
    assert isinstance(req.body, SocketBody)
    read = bytearray()
    while piece := req.body.read(size):
        assert size is None or len(piece) <= size
        read += piece
    assert read == BODY
    following = next(connection.parser)
    assert (following.method, following.path) == ("GET", "/health")


def test_what_the_app_leaves_unread_is_drained_by_gunicorn(connect):
    connection = connect(head(len(BODY)) + BODY + NEXT)
    req = connection.request()
    assert req.body.read(10) == BODY[:10]
    assert next(connection.parser).path == "/health"


def test_lines(connect):
    connection = connect(head(len(BODY)), BODY)
    body = connection.request().body
    assert body.readline() == BODY.split(b"\n")[0] + b"\n"
    assert body.readline(5) == b"<r n="
    lines = list(body)
    assert b"".join([BODY.split(b"\n")[0] + b"\n", b"<r n=", *lines]) == BODY


def test_a_body_cut_short_ends_early_and_the_connection_with_it(connect):
    connection = connect(head(len(BODY)), BODY[:5000], close=True)
    body = connection.request().body
    assert body.read(1 << 20) == BODY[:5000]
    assert body.read(1 << 20) == b""
    assert body.failed  # gunicorn's sign: no further request on this connection
    assert connection.parser.finish_body() is False


def test_a_client_that_sends_nothing_meets_the_sockets_timeout(connect):
    connection = connect(head(len(BODY)), BODY[:100], timeout=0.3)
    body = connection.request().body
    assert body.read(100) == BODY[:100]
    with pytest.raises(TimeoutError):
        body.read(100)
    assert body.failed


def test_a_chunked_body_keeps_gunicorns_reader(connect):
    chunked = (b"POST /jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n0\r\n\r\n")
    req = connect(chunked).request()
    assert not isinstance(req.body, SocketBody)
    assert req.body.read() == b"hello"


def test_a_request_without_a_body_keeps_gunicorns_reader(connect):
    req = connect(NEXT).request()
    assert not isinstance(req.body, SocketBody)
    assert req.body.read() == b""
