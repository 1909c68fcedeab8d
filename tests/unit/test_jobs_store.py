"""jobs/store.py against a real redis-server: forward-only transitions, run ownership,
dispatch tokens, requeue and attempts, expiry with tombstones, idempotency keys."""

from __future__ import annotations

import uuid

import pytest

from jobs import keys
from jobs.resource import job_resource
from jobs.status import Claim, Created, Creation, JobStatus, Ownership, Requeue
from jobs.store import JobStore, NewJob, is_job_id

LOST = {"code": "WORKER_LOST", "message": "lost"}


@pytest.fixture
def store(redis_db):
    client = redis_db.client()
    client.flushdb()
    return JobStore(client, result_ttl_seconds=3600, tombstone_ttl_seconds=7200)


def start(store: JobStore, job_id: str, worker: str, dispatch: str | None = None,
          max_attempts: int = 5):
    return store.start(job_id, "", worker, dispatch, max_attempts, LOST)


def new_job(**changes) -> NewJob:
    values = {"format": "json", "options": {"namespaces": "strip"}, "input_filename": "a.xml",
              "input_size": 10, "input_sha256": "0" * 64, "request_id": "req-1"}
    return NewJob(**{**values, **changes})


def test_created_job_reads_back_as_queued(store):
    created = store.create(new_job())
    assert created.outcome is Creation.CREATED and is_job_id(created.job_id)
    job_id = created.job_id
    job = store.get(job_id)
    assert job.status == "queued" and job.options == {"namespaces": "strip"}
    resource = job_resource(job)
    assert resource["progress"] == {"bytes_done": 0, "bytes_total": 10, "percent": 0.0}
    assert resource["created_at"].endswith("Z") and resource["started_at"] is None


def test_life_of_a_job(store):
    job_id = store.create(new_job()).job_id
    before, run = start(store, job_id, "w1")
    assert before is Claim.STARTED
    assert store.progress(job_id, run, 5, 10) is Ownership.OWNED
    assert job_resource(store.get(job_id))["progress"]["percent"] == 50.0
    assert (store.finish(job_id, "", run, JobStatus.SUCCEEDED, result={"size_bytes": 3})
            is Ownership.OWNED)
    job = store.get(job_id)
    assert job.status == "succeeded" and job.result["expires_at"].endswith("Z")
    # Final means final: no restart, no second result, no cancel.
    assert start(store, job_id, "w2")[0] is Claim.FINISHED
    assert (store.finish(job_id, "", run, JobStatus.FAILED, error={"code": "X"})
            is not Ownership.OWNED)
    assert store.discard(job_id, "") is JobStatus.SUCCEEDED  # deletes the finished record…
    assert store.get(job_id) is None and store.existed(job_id, "")  # …leaving a tombstone


def test_redelivery_supersedes_the_old_run(store):
    job_id = store.create(new_job()).job_id
    _, first = start(store, job_id, "w1")
    before, second = start(store, job_id, "w2")
    assert before is Claim.RESTARTED and second != first
    assert store.progress(job_id, first, 1, 10) is Ownership.SUPERSEDED
    assert (store.finish(job_id, "", first, JobStatus.SUCCEEDED, result={"size_bytes": 1})
            is not Ownership.OWNED)
    assert (store.finish(job_id, "", second, JobStatus.SUCCEEDED, result={"size_bytes": 1})
            is Ownership.OWNED)
    assert store.get(job_id).attempts == 2


def test_cancel_queued_and_running(store):
    queued = store.create(new_job()).job_id
    assert store.discard(queued, "") is JobStatus.QUEUED
    assert store.get(queued).status == "cancelled"
    assert start(store, queued, "w1")[0] is Claim.FINISHED  # a worker never runs it

    running = store.create(new_job()).job_id
    _, run = start(store, running, "w1")
    assert store.discard(running, "") is JobStatus.RUNNING
    assert store.progress(running, run, 2, 10) is Ownership.CANCELLED
    assert (store.finish(running, "", run, JobStatus.SUCCEEDED, result={"size_bytes": 1})
            is not Ownership.OWNED)


def test_unknown_expired_and_malformed_ids(store, redis_db):
    assert store.get(str(uuid.uuid4())) is None
    assert not store.existed(str(uuid.uuid4()), "")
    assert store.get("../../x") is None and not store.existed("nope", "")
    job_id = store.create(new_job()).job_id
    redis_db.client().delete(keys.job(job_id))  # as if its TTL ran out
    assert store.get(job_id) is None and store.existed(job_id, "")


def test_ttls(store, redis_db):
    client = redis_db.client()
    job_id = store.create(new_job()).job_id
    assert 0 < client.ttl(keys.job(job_id)) <= 7200
    assert client.ttl(keys.tombstone(job_id)) > client.ttl(keys.job(job_id))
    _, run = start(store, job_id, "w1")
    store.finish(job_id, "", run, JobStatus.FAILED, error={"code": "XML_PARSE_ERROR"})
    assert 3500 < client.ttl(keys.job(job_id)) <= 3600
    assert client.ttl(keys.tombstone(job_id)) > 3600


def test_idempotency_key_maps_to_the_first_job(store):
    first = store.create(new_job(), idempotency_key="k-1")
    assert first.outcome is Creation.CREATED
    assert store.create(new_job(), idempotency_key="k-1") == Created(Creation.REPLAYED,
                                                                      first.job_id)
    other = store.create(new_job(), idempotency_key="k-2")
    assert other.outcome is Creation.CREATED and other.job_id != first.job_id


def test_a_message_of_an_older_dispatch_is_refused(store):
    new = new_job()
    job_id = store.create(new).job_id
    assert job_id in store.unpublished(-1)
    store.published(job_id, new.dispatch)
    assert job_id not in store.unpublished(-1)
    assert start(store, job_id, "w1", dispatch="not-the-current-one")[0] is Claim.STALE
    before, _ = start(store, job_id, "w1", dispatch=new.dispatch)
    assert before is Claim.STARTED


def test_a_lost_run_is_requeued_under_a_new_dispatch(store):
    new = new_job()
    job_id = store.create(new).job_id
    _, run = start(store, job_id, "w1", dispatch=new.dispatch)
    assert job_id in store.silent_runs(-1)
    assert store.requeue(job_id, "", run, "second", 5, LOST) is Requeue.REQUEUED
    job = store.get(job_id)
    assert (job.status, job.dispatch, job.run_id) == ("queued", "second", None)
    assert job_id not in store.silent_runs(-1) and job_id in store.unpublished(-1)
    # The lost run can no longer report; the first message, redelivered late, is refused.
    assert store.progress(job_id, run, 1, 10) is Ownership.SUPERSEDED
    assert (store.finish(job_id, "", run, JobStatus.SUCCEEDED, result={"size_bytes": 1})
            is not Ownership.OWNED)
    assert start(store, job_id, "w2", dispatch=new.dispatch)[0] is Claim.STALE
    before, second = start(store, job_id, "w2", dispatch="second")
    assert before is Claim.STARTED and store.get(job_id).attempts == 2
    # A requeue naming a run that no longer owns the job changes nothing.
    assert store.requeue(job_id, "", run, "third", 5, LOST) is Requeue.MOVED_ON
    assert (store.finish(job_id, "", second, JobStatus.SUCCEEDED, result={"size_bytes": 1})
            is Ownership.OWNED)


def test_attempts_are_bounded(store):
    job_id = store.create(new_job()).job_id
    _, run = start(store, job_id, "w1", max_attempts=2)
    assert store.requeue(job_id, "", run, "d2", 2, LOST) is Requeue.REQUEUED
    _, run = start(store, job_id, "w1", dispatch="d2", max_attempts=2)
    assert store.requeue(job_id, "", run, "d3", 2, LOST) is Requeue.FAILED
    job = store.get(job_id)
    assert job.status == "failed" and job.error == LOST and job.finished_at
    assert job_id not in store.silent_runs(-1) and job_id not in store.unpublished(-1)

    # Redelivered by the broker too often (a child killed each time): the claim fails it.
    other = store.create(new_job()).job_id
    start(store, other, "w1", max_attempts=1)
    assert start(store, other, "w2", max_attempts=1)[0] is Claim.EXHAUSTED
    assert store.get(other).status == "failed"


def test_a_worker_heartbeat_keeps_a_quiet_run_alive(store):
    job_id = store.create(new_job()).job_id
    start(store, job_id, "w1")
    store.redis.zadd(keys.running_jobs(), {job_id: 0})  # as if silent since 1970
    assert job_id in store.silent_runs(60)
    store.keep_alive([job_id, "not-running"])
    assert job_id not in store.silent_runs(60)
    assert store.redis.zscore(keys.running_jobs(), "not-running") is None
