"""Status polls offered at a fixed rate, open loop: latency from each request's *intended* send
time, so that a slow answer cannot hide the requests that should have been sent meanwhile
(no coordinated omission).

    result = offer(url, {"Authorization": "Bearer …"}, rate=1200, seconds=20)
    result.percentile(99)  # ms

Request i is due at t0 + i/rate whatever happened before it. A dispatcher hands each due time
to whichever of `connections` keep-alive connections is free; when none is, the request waits
in a queue, and that wait is part of its latency (as it would be for a user). Our own lag is
measured apart: how late the dispatcher woke after a request fell due (`lag_ms`), so that a
generator that cannot keep up on a busy machine says so rather than passing its delay off as
the server's.

Why our own generator, not wrk: wrk is a closed loop (a connection sends its next request when
the previous one is answered) and measures from the actual send; its Lua `delay()` paces a
connection but cannot timestamp an intended send without LuaJIT's FFI, and wrk2, which does
this, is not packaged. asyncio over raw keep-alive sockets (a request's head written once, the
answer read by Content-Length) costs ~50 µs of CPU a request here: ~7% of a core at 1,400/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DRAIN_SECONDS = 5.0  # after the last request fell due, how long its answers may take
CONNECT_SECONDS = 5.0


@dataclass
class OpenLoopResult:
    rate: float  # offered, requests/s
    seconds: float  # the schedule's length
    connections: int
    latencies_ms: list[float] = field(default_factory=list)  # answered, from intended send
    errors: Counter[str] = field(default_factory=Counter)  # non-200 statuses, socket errors
    unanswered: int = 0  # due but not answered within the drain after the schedule's end
    lag_ms: list[float] = field(default_factory=list)  # the dispatcher's own lateness

    @property
    def scheduled(self) -> int:
        return int(self.rate * self.seconds)

    @property
    def answered_per_s(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float, values: list[float] | None = None) -> float | None:
        data = sorted(self.latencies_ms if values is None else values)
        if not data:
            return None
        return data[min(len(data) - 1, max(0, math.ceil(p / 100 * len(data)) - 1))]

    @property
    def ok(self) -> bool:
        return not self.errors and not self.unanswered and bool(self.latencies_ms)


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """One HTTP/1.1 answer with a Content-Length: its status, and whether the server keeps the
    connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, keep = None, True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            keep = False
    if length is None:
        raise ValueError("an answer without Content-Length")
    await reader.readexactly(length)
    return status, keep


async def _offer(url: str, headers: dict[str, str], rate: float, seconds: float,
                 connections: int, drain: float) -> OpenLoopResult:
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    request = head.encode("latin-1")
    result = OpenLoopResult(rate, seconds, connections)
    due: asyncio.Queue[float] = asyncio.Queue()

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_SECONDS)

    async def connection(opened: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        reader, writer = opened
        try:
            while True:
                intended = await due.get()
                try:
                    if writer is None:
                        reader, writer = await connect()
                    writer.write(request)
                    status, keep = await _read_answer(reader)
                    result.latencies_ms.append(1000 * (loop.time() - intended))
                    if status != 200:
                        result.errors[f"HTTP {status}"] += 1
                    if not keep:
                        writer.close()
                        writer = None
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        TimeoutError, ValueError) as exc:
                    result.errors[type(exc).__name__] += 1
                    if writer is not None:
                        writer.close()
                    writer = None
                finally:
                    due.task_done()
        finally:
            if writer is not None:
                writer.close()

    # Every connection is open before the first request falls due: its setup is not a latency.
    opened = await asyncio.gather(*(connect() for _ in range(connections)))
    workers = [asyncio.create_task(connection(pair)) for pair in opened]
    total = result.scheduled
    t0 = loop.time() + 0.05
    sent = 0
    while sent < total:
        now = loop.time()
        ready = min(total, math.floor((now - t0) * rate) + 1)  # floor: none early
        if ready > sent:
            result.lag_ms.append(1000 * (now - (t0 + sent / rate)))
            for i in range(sent, ready):
                due.put_nowait(t0 + i / rate)
            sent = ready
        await asyncio.sleep(max(0.0, t0 + sent / rate - loop.time()))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(due.join(), drain)
    result.unanswered = total - len(result.latencies_ms) - sum(result.errors.values())
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return result


def offer(url: str, headers: dict[str, str], rate: float, seconds: float,
          connections: int = 64, drain: float = DRAIN_SECONDS) -> OpenLoopResult:
    """GET `url` at `rate` requests/s for `seconds`, open loop, over `connections` keep-alive
    connections; stops by itself at most `drain` seconds after the schedule's end (what is
    not answered by then counts as unanswered)."""
    return asyncio.run(_offer(url, headers, rate, seconds, connections, drain))
