"""A job's changes as they happen, for whoever watches it (GET /jobs/<id>/events).

The store's scripts publish every visible change of a job (claimed, progress, finished,
cancelled, queued again) on the job's channel, the whole record as JSON, and count it in the
record's `version` (jobs/store.py `announce`). `JobEvents` is the other end: ONE pub/sub
connection per process, pattern-subscribed to every job's channel, read by one listener (a
thread; a greenlet in the API, whose gunicorn worker is monkey-patched by gevent, so its reads
wait cooperatively), and handed to the `Watch` of each job watched in this process. A thousand
streams cost one Redis connection, not a thousand.

Why pub/sub, not keyspace notifications or streams:
- keyspace notifications need the server configured (`notify-keyspace-events`, which managed
  Redis services may refuse), say only that a command touched a key (HSET, EXPIRE, ZADD … each
  one), and every watcher would then read the record: a round trip per event per process;
- a Redis stream per job keeps a history that must be trimmed and expired with the record, and
  a reader per process would block on a set of keys that changes with every new watcher.
Pub/sub costs one PUBLISH in the script that already writes the change; what it lacks, a
history, is not needed: an event carries the whole job, so a watcher that missed some (it
connected late, Redis restarted) needs only the latest, read from the record. Its `version` is
the event id, so a client resuming with Last-Event-ID gets exactly what changed since.

Delivery: each message is matched to this process's watches by its channel (a dict lookup; the
JSON of a job nobody here watches is never parsed). After every (re)connection the listener
reads the record of every watched job, so that changes written while it was away are not lost.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator

import redis

from . import keys
from .store import Job, JobStore

log = logging.getLogger(__name__)

LISTEN_SECONDS = 1.0  # the listener's longest wait for a message before checking its state
RECONNECT_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.0)  # pauses between attempts to reconnect
WATCH_BACKLOG = 64  # changes a slow watcher may fall behind by (older ones are dropped)
CLIENT_NAME = "xmlconv-events"  # how the subscription shows in CLIENT LIST


class Gone:
    """What a watch receives when its job's record is gone (expired, deleted, or lost by a
    Redis that restarted without it)."""


GONE = Gone()


class Closing:
    """What every watch receives when its process is shutting down (`JobEvents.interrupt`)."""


CLOSING = Closing()


class Watch:
    """One watcher's view of one job: the changes since it started, newest last."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self._changes: collections.deque[Job | Gone | Closing] = collections.deque(
            maxlen=WATCH_BACKLOG)
        self._ready = threading.Condition(threading.Lock())

    def put(self, change: Job | Gone | Closing) -> None:
        with self._ready:
            self._changes.append(change)
            self._ready.notify()

    def next(self, timeout: float) -> Job | Gone | Closing | None:
        """The next change, or None when none came within `timeout` seconds."""
        with self._ready:
            if not self._changes:
                self._ready.wait(timeout)
            return self._changes.popleft() if self._changes else None


class JobEvents:
    """The process's one subscription to every job's changes, shared by all its watches."""

    def __init__(self, client: redis.Redis, store: JobStore, *,
                 listen_seconds: float = LISTEN_SECONDS) -> None:
        self._client = client
        self._listen_seconds = listen_seconds
        self._store = store
        self._watches: dict[str, set[Watch]] = {}
        self._lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._closed = threading.Event()
        self.connected = threading.Event()
        self._ever_subscribed = False
        self.reconnections = 0  # after the first connection (reported by tests and logs)

    @contextlib.contextmanager
    def watch(self, job_id: str) -> Iterator[Watch]:
        """Watch the job for the block: its changes from now on arrive at the Watch (read the
        record *after* entering, so that nothing falls between the read and the first
        change)."""
        self._start()
        watch = Watch(job_id)
        channel = keys.events(job_id)
        with self._lock:
            self._watches.setdefault(channel, set()).add(watch)
        try:
            yield watch
        finally:
            with self._lock:
                watchers = self._watches.get(channel)
                if watchers is not None:
                    watchers.discard(watch)
                    if not watchers:
                        del self._watches[channel]

    def watching(self) -> int:
        """How many watches this process holds."""
        with self._lock:
            return sum(len(watchers) for watchers in self._watches.values())

    def interrupt(self) -> None:
        """The process is shutting down: tell every watch (CLOSING), now, so that its watcher
        ends rather than holds the shutdown until its grace runs out."""
        with self._lock:
            watchers = [watch for group in self._watches.values() for watch in group]
        for watch in watchers:
            watch.put(CLOSING)

    def close(self) -> None:
        """Stop listening (within a second) and let go of the subscription."""
        self._closed.set()
        if self._listener is not None:
            self._listener.join(self._listen_seconds * 3)

    # -- the listener

    def _start(self) -> None:
        with self._lock:
            if self._listener is None:
                self._listener = threading.Thread(target=self._listen, name="job-events",
                                                  daemon=True)
                self._listener.start()

    def _listen(self) -> None:
        failures = 0
        while not self._closed.is_set():
            pubsub = self._client.pubsub()
            try:
                pubsub.psubscribe(keys.events_prefix() + "*")
                while not self._closed.is_set():
                    message = pubsub.get_message(timeout=self._listen_seconds)
                    if message is None:
                        continue
                    if message["type"] == "pmessage":
                        self._deliver(message["channel"], message["data"])
                    elif message["type"] == "psubscribe":  # the server has the subscription
                        self._subscribed(failures)
                        failures = 0
            except redis.RedisError as exc:
                if self.connected.is_set():
                    log.warning("job events: lost the subscription: %s: %s",
                                type(exc).__name__, exc)
                self.connected.clear()
                time.sleep(RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)])
                failures += 1
            except Exception:  # the process's one listener must not die
                log.exception("job events: the listener failed; subscribing again")
                self.connected.clear()
                time.sleep(RECONNECT_SECONDS[-1])
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()

    def _subscribed(self, failures: int) -> None:
        """Subscribed (first, or again after an outage): catch every watch up with its job's
        record, read after the subscription took effect, so that no change falls in between
        (watchers skip what they had already: the version tells)."""
        again = self._ever_subscribed
        self._ever_subscribed = True
        self.connected.set()
        if again:
            self.reconnections += 1
            log.info("job events: subscribed again", extra={"attempts": failures})
        with self._lock:
            channels = list(self._watches)
        for channel in channels:
            job = self._store.get(channel[len(keys.events_prefix()):])
            self._fan_out(channel, job if job is not None else GONE)

    def _deliver(self, channel: str, data: str) -> None:
        with self._lock:
            if channel not in self._watches:
                return  # nobody here watches this job: not even parsed
        try:
            flat = json.loads(data)
            job = Job.from_hash(dict(zip(flat[::2], flat[1::2], strict=True)))
        except (ValueError, KeyError, TypeError):
            log.warning("job events: a message that is not a job record", extra={
                "channel": channel})
            return
        self._fan_out(channel, job)

    def _fan_out(self, channel: str, change: Job | Gone) -> None:
        with self._lock:
            watchers = list(self._watches.get(channel, ()))
        for watch in watchers:
            watch.put(change)
