"""Many event streams held open at once (GET /jobs/<id>/events), and each event's delay from
the write it reports.

    with WriteTimes(redis_client) as written, \
            Streams(api_url, [(job_id, api_key), ...], 1000) as streams:
        streams.wait_open(60)
        ...                       # the jobs progress; streams.delivered counts their events
    delays = streams.delays_ms(written)

The client side holds its sockets cheaply: one asyncio loop (in a thread of its own, so that
the benchmark's main thread can run wrk and read CPU meanwhile) and one coroutine per stream
over a raw keep-alive socket, reading the chunked body and splitting it into events; the
process's open-files limit is raised to its hard limit when the streams need it.

When was a change written? An event's `data` is the job resource, which has no timestamp of the
change (only started_at / finished_at, to the second); its `id` is the record's `version`. The
store's script publishes the whole record, `version` included, on the job's channel in the
same script that writes the change: WriteTimes subscribes to those channels as the API does and
notes when each (job id, version) arrived, which is the write's moment give or take a
loopback hop; an event's delay is its arrival on a stream minus that. (The record's own
`updated_at` is the worker's clock *before* it sent the write: a worker preempted in between
— at nice 19 on a busy machine, hundreds of ms — would be charged to the API; that lag is
kept apart, `worker_lag_ms`.)

A stream's first event (the job as it is when the stream opens) reports no new write and is not
counted; every later one is, and a version published after a stream opened that never arrived
on it is counted as missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import redis

from jobs import keys

OPEN_ATTEMPTS = 10  # a refused stream (503 STREAMS_BUSY of a full process) is tried again
OPEN_PAUSE = 0.2  # seconds between attempts: the next may land on another process
OPENING_AT_ONCE = 50  # streams being opened at a time


class WriteTimes:
    """(job id, version) -> when that change was published (time.time()), from a pattern
    subscription to every job's channel, read by a thread; and how long before that the
    worker stamped it (updated_at)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self.times: dict[tuple[str, int], float] = {}
        self.worker_lag_ms: list[float] = []
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="write-times", daemon=True)

    def _listen(self) -> None:
        pubsub = self._client.pubsub()
        prefix = keys.events_prefix()
        try:
            pubsub.psubscribe(prefix + "*")
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=0.5)
                if message is None:
                    continue
                if message["type"] == "psubscribe":
                    self._subscribed.set()
                elif message["type"] == "pmessage":
                    at = time.time()
                    flat = json.loads(message["data"])
                    record = dict(zip(flat[::2], flat[1::2], strict=True))
                    job_id = _text(message["channel"])[len(prefix):]
                    self.times[(job_id, int(record["version"]))] = at
                    self.worker_lag_ms.append(1000 * (at - float(record["updated_at"])))
        finally:
            pubsub.close()

    def __enter__(self) -> WriteTimes:
        self._thread.start()
        if not self._subscribed.wait(10):
            raise RuntimeError("could not subscribe to the jobs' channels")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class Received:
    version: int
    at: float  # time.time() when its bytes arrived


@dataclass
class Stream:
    job_id: str
    api_key: str
    events: list[Received] = field(default_factory=list)
    opened: bool = False
    refused: bool = False  # every attempt to open it was refused
    broken: bool = False  # it failed before the server ended it
    ended: bool = False  # the server ended it (a final event, or a `gone`)
    gone: bool = False


class Streams:
    """`count` streams spread round-robin over `jobs` ((job id, its owner's API key)), opened
    OPENING_AT_ONCE at a time and held until the server ends them or `close()`."""

    def __init__(self, api_url: str, jobs: list[tuple[str, str]], count: int) -> None:
        parts = urlsplit(api_url)
        self._host, self._port, self._netloc = parts.hostname, parts.port, parts.netloc
        self.streams = [Stream(*jobs[n % len(jobs)]) for n in range(count)]
        self.refused: Counter[str] = Counter()  # statuses or errors of attempts to open
        self.errors: Counter[str] = Counter()  # streams broken before the server ended them
        self.open_now = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="streams",
                                        daemon=True)
        self._tasks: list[asyncio.Task] = []

    # -- from the benchmark's thread

    def __enter__(self) -> Streams:
        _raise_open_files(len(self.streams) + 256)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open_all(), self._loop)
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def wait_open(self, timeout: float) -> int:
        """Wait until every stream is open (or given up on): how many are open."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(s.opened or s.refused or s.broken for s in self.streams):
                break
            time.sleep(0.1)
        return self.open_now

    def wait_ended(self, timeout: float) -> int:
        """Wait until the server ended every open stream: how many it ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.open_now:
            time.sleep(0.1)
        return sum(1 for s in self.streams if s.ended)

    @property
    def delivered(self) -> int:
        """Events received after each stream's first."""
        return sum(max(0, len(s.events) - 1) for s in self.streams)

    def close(self) -> None:
        if not self._thread.is_alive():
            return

        async def cancel() -> None:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cancel(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def delays_ms(self, written: WriteTimes) -> tuple[list[float], int, int]:
        """Each counted event's delay from its write (ms); how many events had no write seen
        (published before the subscription); how many versions published after a stream's
        first event never reached it (only for streams the server ended)."""
        delays, unmatched, missed = [], 0, 0
        by_job: dict[str, list[int]] = {}
        for (job_id, version) in written.times:
            by_job.setdefault(job_id, []).append(version)
        for stream in self.streams:
            if not stream.events:
                continue
            for event in stream.events[1:]:
                at = written.times.get((stream.job_id, event.version))
                if at is None:
                    unmatched += 1
                else:
                    delays.append(1000 * (event.at - at))
            if stream.ended:
                first, last = stream.events[0].version, stream.events[-1].version
                got = {e.version for e in stream.events}
                missed += sum(1 for v in by_job.get(stream.job_id, ())
                              if first < v <= last and v not in got)
        return delays, unmatched, missed

    # -- in the loop's thread

    async def _open_all(self) -> None:
        gate = asyncio.Semaphore(OPENING_AT_ONCE)
        self._tasks = [asyncio.create_task(self._hold(stream, gate)) for stream in self.streams]

    async def _hold(self, stream: Stream, gate: asyncio.Semaphore) -> None:
        writer = None
        try:
            async with gate:
                reader, writer, chunked = await self._open(stream)
            if reader is None:
                stream.refused = True
                return
            stream.opened = True
            self.open_now += 1
            try:
                await self._read(stream, reader, chunked)
            finally:
                self.open_now -= 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError) as exc:
            stream.broken = True
            self.errors[type(exc).__name__] += 1
        finally:
            if writer is not None:
                writer.close()

    async def _open(self, stream: Stream):
        request = (f"GET /jobs/{stream.job_id}/events HTTP/1.1\r\nHost: {self._netloc}\r\n"
                   f"Authorization: Bearer {stream.api_key}\r\n"
                   "Accept: text/event-stream\r\n\r\n").encode()
        for _ in range(OPEN_ATTEMPTS):
            try:
                reader, writer = await asyncio.open_connection(self._host, self._port)
            except OSError as exc:
                self.refused[type(exc).__name__] += 1
                await asyncio.sleep(OPEN_PAUSE)
                continue
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
            status = int(head.split(" ", 2)[1])
            if status == 200:
                return reader, writer, "transfer-encoding: chunked" in head
            self.refused[f"HTTP {status}"] += 1
            writer.close()
            if status not in (429, 503):
                break
            await asyncio.sleep(OPEN_PAUSE)
        return None, None, False

    async def _read(self, stream: Stream, reader: asyncio.StreamReader, chunked: bool) -> None:
        buffer = b""
        while True:
            if chunked:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    break
                data = (await reader.readexactly(size + 2))[:-2]
            else:
                data = await reader.read(65536)
                if not data:
                    break
            at = time.time()
            buffer += data
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                fields = dict(line.split(b": ", 1) for line in block.split(b"\n")
                              if b": " in line and not line.startswith(b":"))
                if fields.get(b"event") == b"job":
                    stream.events.append(Received(int(fields[b"id"]), at))
                elif fields.get(b"event") == b"gone":
                    stream.gone = True
        stream.ended = True


def _raise_open_files(needed: int) -> None:
    """This process holds a socket per stream: its soft open-files limit up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
