"""A request body of known length is read straight from the socket (api/socket_body.py) and hashed
and written beside the reading (common/background.py), against the real API under gunicorn:
whatever way the bytes arrive, the stored input is exactly the body (size and sha256 in the job),
and the connection's next request is read where the body ends."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from urllib.parse import urlsplit

import requests

from testkit.jobs_api import accepted_job
from testkit.waiting import wait_for

XML = {"Content-Type": "application/xml"}


def document(records: int, seed: int) -> bytes:
    """A document whose bytes differ from one seed to the next (so that hashes tell them apart)."""
    rows = b"".join(b"<r n='%d'>%s</r>" % (n, os.urandom(24).hex().encode())
                    for n in range(records))
    return b"<rows seed='%d'>" % seed + rows + b"</rows>\n"


def stored_as(job: dict, body: bytes) -> None:
    assert job["input"]["size_bytes"] == len(body)
    assert job["input"]["sha256"] == hashlib.sha256(body).hexdigest()


def connect(stack) -> socket.socket:
    parts = urlsplit(stack.api_url)
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


def post(body: bytes, **headers: str) -> bytes:
    lines = ["POST /jobs HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/xml",
             f"Content-Length: {len(body)}", *(f"{k.replace('_', '-')}: {v}"
                                                for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Answers:
    """Reads HTTP/1.1 answers (each with Content-Length) off one connection, in order."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            piece = self.sock.recv(65536)
            assert piece, f"the connection closed: {self.buffer!r}"
            self.buffer += piece
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def next(self) -> tuple[int, bytes]:
        head = self._until(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        headers = {name.strip().lower(): value.strip() for name, _, value in
                   (line.partition(b":") for line in head.split(b"\r\n")[1:])}
        length = int(headers.get(b"content-length", b"0"))
        while len(self.buffer) < length:
            piece = self.sock.recv(65536)
            assert piece, "the connection closed mid-answer"
            self.buffer += piece
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, body


def test_a_request_pipelined_behind_an_upload_is_answered_after_it(stack):
    """The body is read to its last byte and not one further: the GET sent in the same packet
    behind it is gunicorn's next request."""
    body = document(2000, 1)
    with connect(stack) as sock:
        sock.sendall(post(body) + body + b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answers = Answers(sock)
        status, answer = answers.next()
        assert status == 202, answer
        stored_as(json.loads(answer), body)
        status, answer = answers.next()
        assert (status, json.loads(answer)) == (200, {"status": "ok"})


def test_an_upload_trickled_in_small_pieces_is_stored_whole(stack):
    body = document(3000, 2)
    with connect(stack) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(post(body))
        for start in range(0, len(body), 7919):  # a prime: pieces cut anywhere
            sock.sendall(body[start:start + 7919])
            if start % (10 * 7919) == 0:
                time.sleep(0.01)
        status, answer = Answers(sock).next()
    assert status == 202, answer
    stored_as(json.loads(answer), body)


def test_expect_100_continue_is_answered_before_the_body(stack):
    body = document(500, 3)
    with connect(stack) as sock:
        sock.sendall(post(body, Expect="100-continue"))
        answers = Answers(sock)
        assert answers.next() == (100, b"")
        sock.sendall(body)
        status, answer = answers.next()
    assert status == 202, answer
    stored_as(json.loads(answer), body)


def test_uploads_one_after_another_on_a_kept_alive_connection(stack):
    """Large and small, each stored as sent, and each job converts."""
    bodies = [document(60_000, 4), document(10, 5), document(30_000, 6)]  # ~5 MB, tiny, ~2.5
    with requests.Session() as session:
        jobs = [accepted_job(session.post(stack.url("/jobs"), data=body, headers=XML,
                                          timeout=60)) for body in bodies]
    for job, body in zip(jobs, bodies, strict=True):
        stored_as(job, body)
    wait_for(lambda: all(stack.get_job(job["id"])["status"] == "succeeded" for job in jobs), 60,
             "the jobs did not succeed")
