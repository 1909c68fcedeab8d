"""The load test's own clients, against scripted servers on loopback: the open-loop generator
charges a slow answer's wait to every request that fell due meanwhile (no coordinated
omission), and the event-stream client reads chunked Server-Sent Events as EventSource would."""

from __future__ import annotations

import socket
import time

from bench.event_streams import Streams
from bench.open_loop import offer
from testkit.tcp_server import TcpServer, read_head

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


class SlowServer(TcpServer):
    """Keep-alive; each request answered `pause` seconds after it arrived, in order."""

    def __init__(self, pause: float) -> None:
        self.pause = pause
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        with conn:
            pending = b""
            while True:
                while b"\r\n\r\n" not in pending:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    pending += chunk
                _, _, pending = pending.partition(b"\r\n\r\n")
                time.sleep(self.pause)
                conn.sendall(ANSWER)


def test_a_slow_answer_delays_every_request_due_meanwhile() -> None:
    # One connection, 0.1 s an answer: 10/s at most, 20/s offered for 1 s. A closed loop would
    # report 100 ms for each; from the intended send times the queue shows: the last request,
    # due at 0.95 s, is answered at ~2 s.
    with SlowServer(0.1) as server:
        result = offer(f"http://127.0.0.1:{server.port}/jobs/x", {"Authorization": "Bearer k"},
                       rate=20, seconds=1, connections=1)
    assert result.ok, (result.errors, result.unanswered)
    assert len(result.latencies_ms) == 20
    assert 90 <= min(result.latencies_ms) < 400
    assert result.percentile(99) > 900  # ~1,050 ms: queueing counted, not hidden
    assert result.percentile(50) > 400


def test_below_its_ceiling_the_generator_keeps_its_schedule() -> None:
    with SlowServer(0.0) as server:
        result = offer(f"http://127.0.0.1:{server.port}/jobs/x", {}, rate=200, seconds=1,
                       connections=4)
    assert result.ok
    assert len(result.latencies_ms) == 200
    assert result.answered_per_s == 200


def test_an_unanswered_request_is_counted() -> None:
    with SlowServer(30) as server:
        result = offer(f"http://127.0.0.1:{server.port}/", {}, rate=4, seconds=0.5,
                       connections=1, drain=0.5)
    assert result.unanswered == 2 and not result.ok


class EventServer(TcpServer):
    """GET …/events: a chunked stream of SSE text (a retry, a comment, two `job` events, a
    line split across chunks), then its end."""

    def handle(self, conn: socket.socket) -> None:
        with conn:
            read_head(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            for piece in (b"retry: 2000\n\n", b"id: 3\nevent: job\ndata: {\"a\": 1}\n\n",
                          b": keep-alive\n\n", b"id: 4\nevent: jo", b"b\ndata: {}\n\n"):
                conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                time.sleep(0.02)
            conn.sendall(b"0\r\n\r\n")
            time.sleep(0.5)  # keep-alive: the client must end on the last chunk, not on close


def test_the_stream_client_reads_events_until_the_server_ends_the_stream() -> None:
    with EventServer() as server, Streams(f"http://127.0.0.1:{server.port}",
                                          [("job-1", "key")], 3) as streams:
        assert streams.wait_open(10) >= 0
        assert streams.wait_ended(10) == 3
    assert streams.delivered == 3  # each stream's events after its first
    for stream in streams.streams:
        assert [event.version for event in stream.events] == [3, 4]
        assert stream.ended and not stream.broken
    assert not streams.refused and not streams.errors
