"""jobs/events.py against a real redis-server: every change a job's transitions write reaches
its watchers in order, with a version each; one subscription serves every watch of a process;
a dropped subscription comes back and catches its watches up with what they missed."""

from __future__ import annotations

import contextlib
import time

import pytest

from jobs import keys
from jobs.events import CLIENT_NAME, GONE, JobEvents
from jobs.status import JobStatus
from jobs.store import JobStore, NewJob
from testkit.waiting import wait_for

LOST = {"code": "WORKER_LOST", "message": "lost"}


@pytest.fixture
def store(redis_db):
    client = redis_db.client()
    client.flushdb()
    return JobStore(client, result_ttl_seconds=3600, tombstone_ttl_seconds=7200)


@pytest.fixture
def events(redis_db, store):
    hub = JobEvents(redis_db.client(client_name=CLIENT_NAME), store, listen_seconds=0.1)
    yield hub
    hub.close()


def new_job(store: JobStore) -> str:
    return store.create(NewJob(format="json", options={}, input_filename="a.xml",
                               input_size=100, input_sha256="0" * 64)).job_id


def changes(watch, count: int, timeout: float = 5.0) -> list:
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        change = watch.next(0.2)
        if change is not None:
            got.append(change)
    return got


def subscribed(events: JobEvents) -> None:
    assert events.connected.wait(5), "the subscription did not start"


def test_every_change_of_a_job_reaches_its_watch_in_order(store, events):
    job_id = new_job(store)
    other = new_job(store)
    with events.watch(job_id) as watch:
        subscribed(events)
        caught_up = watch.next(1)  # the first subscription's catch-up: the job as queued
        assert caught_up.status is JobStatus.QUEUED and caught_up.version == 0
        _, run = store.start(job_id, "", "w1", None, 3, LOST)
        store.start(other, "", "w1", None, 3, LOST)  # another job's change: not this watch's
        for done in (25, 50, 75):
            store.progress(job_id, run, done, 100)
        store.finish(job_id, "", run, JobStatus.SUCCEEDED, result={"size_bytes": 3})
        got = changes(watch, 5)
    assert [(c.status, c.bytes_done, c.version) for c in got] == [
        (JobStatus.RUNNING, 0, 1), (JobStatus.RUNNING, 25, 2), (JobStatus.RUNNING, 50, 3),
        (JobStatus.RUNNING, 75, 4), (JobStatus.SUCCEEDED, 75, 5)]
    assert all(c.id == job_id for c in got)
    assert store.get(job_id).version == 5
    assert events.watching() == 0


def test_a_cancel_and_a_requeue_are_changes_too(store, events):
    job_id = new_job(store)
    with events.watch(job_id) as watch:
        subscribed(events)
        watch.next(1)
        _, run = store.start(job_id, "", "w1", None, 3, LOST)
        store.requeue(job_id, "", run, "d2", 3, LOST)
        store.discard(job_id, "")
        got = changes(watch, 3)
    assert [c.status for c in got] == [JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.CANCELLED]
    assert [c.version for c in got] == [1, 2, 3]


def test_one_subscription_serves_every_watch(redis_db, store, events):
    ids = [new_job(store) for _ in range(50)]
    with contextlib.ExitStack() as held:
        watches = [held.enter_context(events.watch(job_id)) for job_id in ids]
        subscribed(events)
        # The server's other databases may hold other tests' subscriptions: this one's only.
        clients = [c for c in redis_db.client().client_list()
                   if c.get("name") == CLIENT_NAME and c.get("db") == str(redis_db.index)]
        assert len(clients) == 1 and clients[0]["psub"] == "1"
        for watch in watches:
            watch.next(1)  # the catch-up
        for job_id in ids:
            store.start(job_id, "", "w1", None, 3, LOST)
        for job_id, watch in zip(ids, watches, strict=True):
            (change,) = changes(watch, 1)
            assert change.id == job_id and change.status is JobStatus.RUNNING


def test_a_dropped_subscription_comes_back_and_catches_up(redis_db, store, events):
    job_id = new_job(store)
    with events.watch(job_id) as watch:
        subscribed(events)
        watch.next(1)
        admin = redis_db.client()
        killed = admin.client_kill_filter(_type="pubsub")
        assert killed >= 1
        # Written while the subscription may be away: not lost.
        _, run = store.start(job_id, "", "w1", None, 3, LOST)
        wait_for(lambda: events.reconnections >= 1, 10, "the subscription did not come back")
        got = [c for c in changes(watch, 2, timeout=2) if c is not GONE]
        assert got and got[-1].status is JobStatus.RUNNING and got[-1].version == 1
        store.progress(job_id, run, 50, 100)
        (change,) = changes(watch, 1)
        assert change.bytes_done == 50 and change.version == 2


def test_a_job_whose_record_is_gone_is_told_so_after_a_reconnection(redis_db, store, events):
    job_id = new_job(store)
    with events.watch(job_id) as watch:
        subscribed(events)
        watch.next(1)
        redis_db.client().delete(keys.job(job_id))
        redis_db.client().client_kill_filter(_type="pubsub")
        wait_for(lambda: events.reconnections >= 1, 10, "the subscription did not come back")
        assert changes(watch, 1) == [GONE]
