"""A kept-alive connection closes after API_KEEPALIVE_REQUESTS answers (50 by default), its last
answer saying so, so that a busy client's next connection goes to whichever API process
accepts it first; clients that keep connections (requests' pool) carry on unnoticed."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import requests

DEFAULT_KEEPALIVE_REQUESTS = 50  # docs/deployment.md


def read_answer(sock: socket.socket, pending: bytes) -> tuple[dict[str, str], bytes]:
    """One answer with a Content-Length from `sock`: its headers, and what was read past it."""
    while b"\r\n\r\n" not in pending:
        piece = sock.recv(65536)
        assert piece, f"closed before an answer: {pending!r}"
        pending += piece
    head, _, rest = pending.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].split(" ")[1] == "200", lines[0]
    headers = {name.strip().lower(): value.strip()
               for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        piece = sock.recv(65536)
        assert piece, "closed inside an answer"
        rest += piece
    return headers, rest[length:]


def test_a_connection_closes_after_its_share_of_requests(stack):
    parts = urlsplit(stack.api_url)
    request = f"GET /health HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
    said = []
    with socket.create_connection((parts.hostname, parts.port), timeout=15) as sock:
        pending = b""
        for _ in range(DEFAULT_KEEPALIVE_REQUESTS):
            sock.sendall(request)
            headers, pending = read_answer(sock, pending)
            said.append(headers["connection"].lower())
        assert pending == b""
        assert sock.recv(1) == b"", "the connection stayed open after its last answer"
    assert said == ["keep-alive"] * (DEFAULT_KEEPALIVE_REQUESTS - 1) + ["close"]


def test_a_pooling_client_carries_on_over_new_connections(stack):
    with requests.Session() as session:
        answers = [session.get(stack.url("/health"), timeout=15)
                   for _ in range(3 * DEFAULT_KEEPALIVE_REQUESTS)]
    assert [answer.status_code for answer in answers] == [200] * len(answers)
    closing = [n for n, answer in enumerate(answers, 1)
               if answer.headers["Connection"].lower() == "close"]
    assert closing == [DEFAULT_KEEPALIVE_REQUESTS * n for n in (1, 2, 3)]
