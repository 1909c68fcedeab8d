"""jobs/lifecycle.py: every verb of a job's life, its record and its files together, against a
real redis-server and a real directory (no gunicorn, no Celery process). Publishing is the one
seam: a list records the messages the broker would have received."""

from __future__ import annotations

import hashlib
import os
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from common.errors import ServiceError
from jobs import keys
from jobs.figures import JobFigures
from jobs.lifecycle import JobCancelled, Lifecycle, RunSuperseded
from jobs.storage import LocalStorage
from jobs.store import JobStore, NewJob

DOC = b"<root><a>1</a></root>"


class Broker:
    """Records published messages; can be told to refuse them."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, str | None]] = []
        self.announced: list[str] = []
        self.down = False

    def __call__(self, job_id: str, dispatch: str, request_id: str | None) -> None:
        if self.down:
            raise ConnectionError("broker unreachable")
        self.messages.append((job_id, dispatch, request_id))

    def announce(self, job_id: str) -> None:
        self.announced.append(job_id)


@pytest.fixture
def broker() -> Broker:
    return Broker()


@pytest.fixture
def client(redis_db):
    client = redis_db.client()
    client.flushdb()
    return client


@pytest.fixture
def lifecycle(client, tmp_path, broker) -> Lifecycle:
    store = JobStore(client, result_ttl_seconds=3600, tombstone_ttl_seconds=7200)
    return Lifecycle(store, LocalStorage(tmp_path), JobFigures(client), broker, broker.announce,
                     max_attempts=2, stall_seconds=30, delete_input_on_finish=True)


def receiver(job_id: str, data: bytes = DOC):
    def receive(storage) -> NewJob:
        size = storage.save_input(job_id, [data])
        return NewJob(id=job_id, format="json", options={}, input_filename="a.xml",
                      input_size=size, input_sha256=hashlib.sha256(data).hexdigest(),
                      request_id="req-1")
    return receive


def submitted(lifecycle: Lifecycle, key: str | None = None, data: bytes = DOC):
    job_id = str(__import__("uuid").uuid4())
    return lifecycle.submit(job_id, receiver(job_id, data), key).job


def files(lifecycle: Lifecycle, job_id: str) -> list[str]:
    directory = lifecycle._storage.jobs_dir / job_id
    return sorted(os.listdir(directory)) if directory.is_dir() else []


def age(client, key: str, job_id: str) -> None:
    """Make a job look silent (or unsent) since long ago."""
    client.zadd(key, {job_id: time.time() - 3600})


# -- submit


def test_submit_stores_records_and_queues(lifecycle, broker):
    job = submitted(lifecycle)
    assert job.status == "queued" and files(lifecycle, job.id) == ["input.xml"]
    assert broker.messages == [(job.id, job.dispatch, "req-1")]
    assert lifecycle._store.unpublished(-1) == []  # sent and confirmed


def test_submit_undoes_everything_when_the_broker_refuses(lifecycle, broker):
    broker.down = True
    job_id = "0b0f6e8e-58a4-4b8f-9a9b-2f0d6f1c1a11"
    with pytest.raises(ServiceError) as refused:
        lifecycle.submit(job_id, receiver(job_id))
    assert (refused.value.status, refused.value.code) == (503, "QUEUE_UNAVAILABLE")
    assert refused.value.headers["Retry-After"]
    assert files(lifecycle, job_id) == [] and lifecycle._store.get(job_id) is None
    assert lifecycle._store.unpublished(-1) == []


def test_submit_undoes_the_upload_when_receiving_fails(lifecycle):
    job_id = "0b0f6e8e-58a4-4b8f-9a9b-2f0d6f1c1a12"

    def receive(storage):
        storage.save_input(job_id, [DOC])
        raise ServiceError("INVALID_OPTION", "bad", status=400)

    with pytest.raises(ServiceError):
        lifecycle.submit(job_id, receive)
    assert files(lifecycle, job_id) == [] and lifecycle._store.get(job_id) is None


def test_submit_when_redis_is_down_answers_503(tmp_path, broker):
    dead = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    lifecycle = Lifecycle(JobStore(dead, result_ttl_seconds=60, tombstone_ttl_seconds=60),
                          LocalStorage(tmp_path), JobFigures(dead), broker, broker.announce,
                          max_attempts=2, stall_seconds=30, delete_input_on_finish=True)
    with pytest.raises(ServiceError) as refused:
        lifecycle.check_queue()
    assert refused.value.status == 503
    job_id = "0b0f6e8e-58a4-4b8f-9a9b-2f0d6f1c1a13"
    with pytest.raises(ServiceError) as refused:
        lifecycle.submit(job_id, receiver(job_id))
    assert refused.value.status == 503 and broker.messages == []
    # Whether the record was written cannot be known: the upload stays for the sweep, which
    # removes it once it is sure no record exists (the API asks Redis before any upload).
    assert files(lifecycle, job_id) == ["input.xml"]


def test_idempotent_replay_returns_the_first_job_and_keeps_one_upload(lifecycle, broker):
    first = submitted(lifecycle, key="k")
    job_id = "0b0f6e8e-58a4-4b8f-9a9b-2f0d6f1c1a14"
    replay = lifecycle.submit(job_id, receiver(job_id), "k")
    assert not replay.created and replay.job.id == first.id
    assert files(lifecycle, job_id) == [] and len(broker.messages) == 1
    with pytest.raises(ServiceError) as mismatch:
        lifecycle.submit(job_id, receiver(job_id, b"<other/>"), "k")
    assert (mismatch.value.status, mismatch.value.code) == (422, "IDEMPOTENCY_KEY_MISMATCH")
    assert files(lifecycle, job_id) == []


# -- read, cancel, delete


def test_find_tells_unknown_from_expired(lifecycle):
    with pytest.raises(ServiceError) as unknown:
        lifecycle.find("0b0f6e8e-58a4-4b8f-9a9b-2f0d6f1c1a15", "")
    assert unknown.value.status == 404
    job = submitted(lifecycle)
    assert lifecycle.cancel_or_delete(job.id, "").status == "cancelled"
    assert lifecycle.cancel_or_delete(job.id, "") is None  # a finished job is deleted
    with pytest.raises(ServiceError) as gone:
        lifecycle.find(job.id, "")
    assert (gone.value.status, gone.value.code) == (410, "JOB_EXPIRED")


def test_cancel_a_queued_job_removes_its_files_and_it_never_runs(lifecycle):
    job = submitted(lifecycle)
    assert lifecycle.cancel_or_delete(job.id, "").status == "cancelled"
    assert files(lifecycle, job.id) == []
    assert lifecycle.claim(job.id, job.dispatch, "w1") is None


def test_cancel_a_running_job_stops_its_run_which_removes_the_files(lifecycle):
    job = submitted(lifecycle)
    run = lifecycle.claim(job.id, job.dispatch, "w1")
    assert lifecycle.cancel_or_delete(job.id, "").status == "cancelled"
    assert files(lifecycle, job.id) == ["input.xml"]  # the run may still be writing
    run._last_progress = 0
    with pytest.raises(JobCancelled):
        run.progress(5, 10)
    run.cancelled()
    assert files(lifecycle, job.id) == []


def test_result_only_once_succeeded(lifecycle):
    job = submitted(lifecycle)
    with pytest.raises(ServiceError) as early:
        lifecycle.open_result(job, "json")
    assert (early.value.status, early.value.code) == (409, "JOB_NOT_FINISHED")


# -- runs


def test_a_run_succeeds_once_and_drops_its_input(lifecycle):
    job = submitted(lifecycle)
    run = lifecycle.claim(job.id, job.dispatch, "w1")
    with run.open_input() as source, run.write_result("json") as dest:
        dest.write(source.read())
    assert run.succeed({"size_bytes": len(DOC)})
    assert files(lifecycle, job.id) == ["result.json"]
    finished = lifecycle.find(job.id, "")
    with lifecycle.open_result(finished, "json") as handle:
        assert handle.read() == DOC
    assert lifecycle.claim(job.id, job.dispatch, "w2") is None  # final means final


def test_a_failed_run_keeps_no_output(lifecycle):
    job = submitted(lifecycle)
    run = lifecycle.claim(job.id, job.dispatch, "w1")
    with run.write_result("json") as dest:
        dest.write(b"{")
    assert run.fail(ServiceError("XML_PARSE_ERROR", "bad", {"line": 1, "column": 2}))
    assert files(lifecycle, job.id) == []
    assert lifecycle.find(job.id, "").error == {
        "code": "XML_PARSE_ERROR", "message": "bad", "details": {"line": 1, "column": 2}}
    with pytest.raises(ServiceError) as no_result:
        lifecycle.open_result(lifecycle.find(job.id, ""), "json")
    assert no_result.value.code == "RESULT_UNAVAILABLE"


def test_a_redelivered_message_supersedes_the_old_run(lifecycle):
    job = submitted(lifecycle)
    first = lifecycle.claim(job.id, job.dispatch, "w1")
    second = lifecycle.claim(job.id, job.dispatch, "w2")
    first._last_progress = 0
    with pytest.raises(RunSuperseded):
        first.progress(1, 10)
    assert not first.succeed({"size_bytes": 1})
    assert second.succeed({"size_bytes": 1})


# -- recovery


def test_recover_requeues_a_silent_run_once(lifecycle, broker, client):
    job = submitted(lifecycle)
    run = lifecycle.claim(job.id, job.dispatch, "w1")
    lifecycle.recover()
    assert lifecycle.find(job.id, "").status == "running"  # not silent yet
    age(client, keys.running_jobs(), job.id)
    lifecycle.recover()
    requeued = lifecycle.find(job.id, "")
    assert requeued.status == "queued" and requeued.dispatch != job.dispatch
    assert broker.messages[-1] == (job.id, requeued.dispatch, "req-1")
    lifecycle.recover()  # a second pass (another worker) changes nothing
    assert len(broker.messages) == 2
    assert lifecycle.claim(job.id, job.dispatch, "w2") is None  # the old message: stale
    assert not run.succeed({"size_bytes": 1})  # the lost run cannot write a result
    again = lifecycle.claim(job.id, requeued.dispatch, "w2")
    assert again.succeed({"size_bytes": 1})


def test_keep_alive_protects_a_quiet_run(lifecycle, client):
    job = submitted(lifecycle)
    lifecycle.claim(job.id, job.dispatch, "w1")
    age(client, keys.running_jobs(), job.id)
    lifecycle.keep_alive([job.id])
    lifecycle.recover()
    assert lifecycle.find(job.id, "").status == "running"


def test_recover_fails_a_job_lost_too_often(lifecycle, client):
    job = submitted(lifecycle)
    dispatch = job.dispatch
    for _ in range(2):  # max_attempts=2
        lifecycle.claim(job.id, dispatch, "w1")
        age(client, keys.running_jobs(), job.id)
        lifecycle.recover()
        dispatch = lifecycle.find(job.id, "").dispatch
    failed = lifecycle.find(job.id, "")
    assert failed.status == "failed" and failed.error["code"] == "WORKER_LOST"
    assert files(lifecycle, job.id) == []


def test_recover_sends_a_message_that_never_reached_the_broker(lifecycle, broker, client):
    job = submitted(lifecycle)
    client.zadd(keys.unpublished_jobs(), {job.id: 0})  # as if the API died before confirming
    lifecycle.recover()
    assert broker.messages[-1] == (job.id, job.dispatch, "req-1")
    assert lifecycle._store.unpublished(-1) == []


def test_recover_forgets_bookkeeping_of_expired_jobs(lifecycle, client):
    job = submitted(lifecycle)
    lifecycle.claim(job.id, job.dispatch, "w1")
    client.delete(keys.job(job.id))
    age(client, keys.running_jobs(), job.id)
    lifecycle.recover()
    assert client.zscore(keys.running_jobs(), job.id) is None


# -- sweep


def test_remove_orphans_keeps_files_of_live_jobs(lifecycle):
    job = submitted(lifecycle)
    orphan = "0b0f6e8e-58a4-4b8f-9a9b-2f0d6f1c1a16"
    lifecycle._storage.save_input(orphan, [DOC])
    assert lifecycle.remove_orphans(grace_seconds=-1) == 1
    assert files(lifecycle, orphan) == [] and files(lifecycle, job.id) == ["input.xml"]


def test_remove_orphans_and_cancel_in_an_object_store(client, broker, s3_server):
    """The same sweep and cancel over S3Storage: objects, not directories."""
    import uuid

    from jobs.storage_s3 import S3Storage

    storage = S3Storage(s3_server.client(), s3_server.BUCKET, f"t-{uuid.uuid4().hex}")
    lifecycle = Lifecycle(JobStore(client, result_ttl_seconds=3600, tombstone_ttl_seconds=7200),
                          storage, JobFigures(client), broker, broker.announce, max_attempts=2,
                          stall_seconds=30, delete_input_on_finish=True)

    def objects(job_id: str) -> list[str]:
        prefix = storage.job_prefix(job_id)
        return sorted(item["Key"][len(prefix):] for item in storage._list(prefix))

    job = submitted(lifecycle)
    orphan = "0b0f6e8e-58a4-4b8f-9a9b-2f0d6f1c1a18"
    storage.save_input(orphan, [DOC])
    assert lifecycle.remove_orphans(grace_seconds=-5) == 1
    assert objects(orphan) == [] and objects(job.id) == ["input.xml"]
    lifecycle.cancel_or_delete(job.id, job.owner)
    assert objects(job.id) == []


def test_redis_lost_after_the_record_keeps_the_job_whole(lifecycle, broker, client):
    """Redis goes away between recording the job and queueing it (found by `make chaos`): the
    client gets 503, but the upload stays with the record, a retry with the same
    Idempotency-Key answers with that job, and recover() sends its message."""
    job_id = "0b0f6e8e-58a4-4b8f-9a9b-2f0d6f1c1a17"
    real_get = lifecycle._store.get
    lifecycle._store.get = lambda _id: (_ for _ in ()).throw(redis.ConnectionError("gone"))
    with pytest.raises(ServiceError) as refused:
        lifecycle.submit(job_id, receiver(job_id), "retry-me")
    lifecycle._store.get = real_get
    assert refused.value.status == 503 and broker.messages == []
    assert files(lifecycle, job_id) == ["input.xml"]

    retry_id = "0b0f6e8e-58a4-4b8f-9a9b-2f0d6f1c1a18"
    replay = lifecycle.submit(retry_id, receiver(retry_id), "retry-me")
    assert not replay.created and replay.job.id == job_id
    client.zadd(keys.unpublished_jobs(), {job_id: 0})  # JOB_STALL_SECONDS later
    lifecycle.recover()
    assert broker.messages == [(job_id, replay.job.dispatch, "req-1")]
    run = lifecycle.claim(job_id, replay.job.dispatch, "w1")
    with run.open_input() as source:
        assert source.read() == DOC


def test_a_refused_publish_frees_the_idempotency_key(lifecycle, broker):
    broker.down = True
    job_id = "0b0f6e8e-58a4-4b8f-9a9b-2f0d6f1c1a19"
    with pytest.raises(ServiceError):
        lifecycle.submit(job_id, receiver(job_id), "again")
    broker.down = False
    retry_id = "0b0f6e8e-58a4-4b8f-9a9b-2f0d6f1c1a20"
    assert lifecycle.submit(retry_id, receiver(retry_id), "again").created


def test_a_message_received_but_never_started_is_queued_again(lifecycle, broker, client,
                                                              redis_db):
    """A worker process takes the job's message and dies before claiming it (its main process
    lives on, holding the message unacknowledged until the visibility timeout): the recovery
    finds the message in kombu's own bookkeeping and queues the job again (found by chaos)."""
    from common.settings import load_settings
    from jobs.queue import make_celery, publish

    job = submitted(lifecycle)
    app = make_celery(load_settings({"REDIS_URL": redis_db.url}), "test")
    publish(app, job.id, job.dispatch, "req-1")  # the message a real API sends
    with app.connection_for_read() as connection:
        queue = connection.SimpleQueue("xmlconv")
        received = queue.get(timeout=5)  # delivered, never acknowledged
        assert received.payload[0] == [job.id, job.dispatch]
        lifecycle.recover()
        assert lifecycle.find(job.id, "").dispatch == job.dispatch  # just received: fine
        client.zadd(keys.broker_unacked_index(),
                    {tag: 0 for tag in client.zrange(keys.broker_unacked_index(), 0, -1)})
        lifecycle.recover()
        again = lifecycle.find(job.id, "")
        assert again.status == "queued" and again.dispatch != job.dispatch
        assert broker.messages[-1] == (job.id, again.dispatch, "req-1")
        lifecycle.recover()  # the stale message, still held, changes nothing more
        assert lifecycle.find(job.id, "").dispatch == again.dispatch
        assert lifecycle.claim(job.id, job.dispatch, "w1") is None  # stale when it comes
        queue.close()
