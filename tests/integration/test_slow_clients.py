"""Slow clients (slowloris) against the real API under gunicorn.

100 connections hold the API the way a slowloris attack does: most send the headers of a
POST /jobs with a large Content-Length and then a few bytes of body every second, the others
half of their headers and then nothing. Meanwhile the quick requests (GET /health, GET
/jobs/<id>) must answer within a second at p99. A connection that sends nothing for
API_CLIENT_TIMEOUT seconds is closed: a stalled body with 408 REQUEST_TIMEOUT and nothing of the
upload kept, stalled headers quietly, with one log line each.
"""

from __future__ import annotations

import json
import math
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

import pytest
import requests

from testkit.stack import Stack

CLIENT_TIMEOUT = 3  # API_CLIENT_TIMEOUT of this test's API, in seconds
BODY_CLIENTS = 80  # headers, then a trickle of body, then silence
HEADER_CLIENTS = 20  # half of the headers, then silence
PROBES = 30  # of each route
PROBE_TIMEOUT = 5.0  # a probe slower than this counts as this (the operator's health check)
TRICKLE_SECONDS = 5.0  # longer than CLIENT_TIMEOUT: a client that keeps sending is not cut
MARGIN = 3.0  # seconds of slack on the server's timeout
DECLARED_LENGTH = 50 * 1024 * 1024  # under the test stack's MAX_UPLOAD_BYTES: not refused early


@dataclass
class SlowClient:
    sock: socket.socket
    kind: str  # "body" or "headers"
    last_sent: float
    received: bytearray = field(default_factory=bytearray)
    closed_after: float | None = None  # seconds from its last byte sent to the server's close
    send_error: str | None = None


def open_slow_clients(port: int, body: int = BODY_CLIENTS,
                      headers: int = HEADER_CLIENTS) -> list[SlowClient]:
    clients = []
    for index in range(body + headers):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if index < body:
            sock.sendall(b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/xml\r\n"
                         b"Content-Length: %d\r\n\r\n<orders>" % DECLARED_LENGTH)
        else:
            sock.sendall(b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        sock.setblocking(False)
        clients.append(SlowClient(sock, "body" if index < body else "headers", time.monotonic()))
    return clients


def trickle(clients: list[SlowClient], stop: threading.Event, every: float = 1.0) -> None:
    """A few more bytes of body on every body client, every second, until `stop`."""
    while not stop.wait(every):
        for client in clients:
            if client.kind != "body" or client.closed_after is not None:
                continue
            try:
                client.sock.send(b"<o>1</o>")
                client.last_sent = time.monotonic()
            except BlockingIOError:
                pass
            except OSError as exc:
                client.send_error = repr(exc)


def watch_closes(clients: list[SlowClient], deadline: list[float]) -> None:
    """Read what the server answers on each slow client and note when it closes the socket,
    until all are closed or `deadline[0]` (which the test may move) passes."""
    selector = selectors.DefaultSelector()
    for client in clients:
        selector.register(client.sock, selectors.EVENT_READ, client)
    while selector.get_map() and time.monotonic() < deadline[0]:
        for key, _ in selector.select(timeout=0.1):
            client = key.data
            try:
                data = client.sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b""
            if data:
                client.received += data
                continue
            client.closed_after = time.monotonic() - client.last_sent
            selector.unregister(client.sock)
    selector.close()


def probe(url: str, count: int, pause: float = 0.05) -> list[tuple[float, int]]:
    """(latency, status) of `count` GETs on fresh connections, as a health checker makes them;
    one that times out counts as PROBE_TIMEOUT seconds with status 0."""
    results = []
    for _ in range(count):
        start = time.monotonic()
        try:
            status = requests.get(url, timeout=PROBE_TIMEOUT).status_code
        except requests.RequestException:
            status = 0
        results.append((min(time.monotonic() - start, PROBE_TIMEOUT), status))
        time.sleep(pause)
    return results


def p99(latencies: list[float]) -> float:
    """Nearest-rank 99th percentile (for fewer than 100 samples: the slowest)."""
    ordered = sorted(latencies)
    return ordered[math.ceil(0.99 * len(ordered)) - 1]


def parse_response(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


@pytest.fixture()
def slow_api(redis_server, tmp_path):
    """The API alone: no worker consumes its database, a job stays queued."""
    with Stack(tmp_path, redis=redis_server, workers=0,
               env={"API_CLIENT_TIMEOUT": str(CLIENT_TIMEOUT)}) as stack:
        yield stack


def test_slow_clients_neither_starve_quick_requests_nor_stay_forever(slow_api):
    # A job to poll (no worker consumes this database: it stays queued).
    response = requests.post(slow_api.url("/jobs"), data=b"<a><b>1</b></a>", timeout=10,
                             headers={"Content-Type": "application/xml"})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    clients = open_slow_clients(slow_api.api_port)
    deadline = [time.monotonic() + TRICKLE_SECONDS + CLIENT_TIMEOUT + 2 * MARGIN]
    stop = threading.Event()
    trickler = threading.Thread(target=trickle, args=(clients, stop), daemon=True)
    watcher = threading.Thread(target=watch_closes, args=(clients, deadline), daemon=True)
    trickler.start()
    watcher.start()
    try:
        started = time.monotonic()
        health = probe(slow_api.url("/health"), PROBES)
        job = probe(slow_api.url(f"/jobs/{job_id}"), PROBES)
        time.sleep(max(0.0, TRICKLE_SECONDS - (time.monotonic() - started)))
    finally:
        stop.set()
        trickler.join(timeout=10)
    watcher.join(timeout=TRICKLE_SECONDS + CLIENT_TIMEOUT + 3 * MARGIN)
    for client in clients:
        client.sock.close()

    # Quick requests stayed quick.
    assert [status for _, status in health] == [200] * PROBES
    assert [status for _, status in job] == [200] * PROBES
    latency = p99([seconds for seconds, _ in health + job])
    print(f"\np99 of {2 * PROBES} probes with {len(clients)} slow clients: {latency:.3f} s")
    assert latency < 1.0

    # Every slow client was closed by the server after CLIENT_TIMEOUT seconds of silence; the
    # body clients kept sending for longer than that without being cut.
    body = [c for c in clients if c.kind == "body"]
    heads = [c for c in clients if c.kind == "headers"]
    assert all(c.send_error is None for c in body), [c.send_error for c in body][:3]
    waits = sorted(c.closed_after for c in clients if c.closed_after is not None)
    assert len(waits) == len(clients), f"{len(clients) - len(waits)} slow clients still open"
    assert waits[0] >= CLIENT_TIMEOUT - 0.5 and waits[-1] <= CLIENT_TIMEOUT + MARGIN, waits

    # A stalled body is answered 408 REQUEST_TIMEOUT in the error envelope; stalled headers
    # get no answer (there is no request to answer yet).
    for client in body:
        status, answer = parse_response(bytes(client.received))
        assert status == 408, client.received[:300]
        assert answer["error"]["code"] == "REQUEST_TIMEOUT"
        assert set(answer["error"]) == {"code", "message", "details"}
    assert all(c.received == b"" for c in heads)

    # Nothing of the stalled uploads was kept: only the polled job's directory is there.
    assert slow_api.job_dirs() == [job_id]

    # The API's log is JSON lines only, without tracebacks: one line per stalled head.
    lines = slow_api.api.lines()
    records = [json.loads(line) for line in lines]
    assert not [line for line in lines if "Traceback" in line]
    assert not [r for r in records if r["level"] in ("ERROR", "CRITICAL")]
    stalled_heads = [r for r in records if r.get("event") == "client_timeout"
                     and r.get("phase") == "headers"]
    assert len(stalled_heads) == HEADER_CLIENTS
    refused = [r for r in records if r.get("path") == "/jobs" and r.get("status") == 408]
    assert len(refused) == BODY_CLIENTS
