"""An upload's quota slot (jobs/reservation.py through Lifecycle.reserve), against a real
redis-server: uploads in flight count toward max_active_jobs beside unfinished jobs, a slot
becomes the job on submit, comes back when the upload fails, and lapses when nothing refreshes
it (its API process died)."""

from __future__ import annotations

import hashlib
import time
import uuid

import pytest

from common.errors import ServiceError
from jobs import keys
from jobs.figures import JobFigures
from jobs.lifecycle import Lifecycle
from jobs.storage import LocalStorage
from jobs.store import JobStore, NewJob

DOC = b"<root/>"
OWNER = "key-1"


@pytest.fixture
def client(redis_db):
    client = redis_db.client()
    client.flushdb()
    return client


@pytest.fixture
def store(client) -> JobStore:
    return JobStore(client, result_ttl_seconds=3600, tombstone_ttl_seconds=7200)


def make_lifecycle(store: JobStore, client, tmp_path, seconds: int = 60) -> Lifecycle:
    return Lifecycle(store, LocalStorage(tmp_path), JobFigures(client),
                     lambda *message: None, lambda job_id: None, max_attempts=2,
                     stall_seconds=30, delete_input_on_finish=True, reservation_seconds=seconds)


@pytest.fixture
def lifecycle(store, client, tmp_path) -> Lifecycle:
    return make_lifecycle(store, client, tmp_path)


def receiver(job_id: str, fail: bool = False):
    def receive(storage) -> NewJob:
        size = storage.save_input(job_id, [DOC])
        if fail:
            raise ServiceError("INVALID_GZIP", "broken", status=400)
        return NewJob(id=job_id, format="json", options={}, input_filename="a.xml",
                      input_size=size, input_sha256=hashlib.sha256(DOC).hexdigest(),
                      owner=OWNER)
    return receive


def quota_refused(lifecycle: Lifecycle, max_active: int) -> ServiceError:
    with pytest.raises(ServiceError) as caught, lifecycle.reserve(OWNER, str(uuid.uuid4()),
                                                                  max_active):
        pytest.fail("a slot was given")
    assert (caught.value.status, caught.value.code) == (429, "QUOTA_EXCEEDED")
    return caught.value


def test_an_upload_in_flight_holds_a_slot(lifecycle, client):
    with lifecycle.reserve(OWNER, str(uuid.uuid4()), 2):
        assert client.zcard(keys.owner_uploads(OWNER)) == 1
        with lifecycle.reserve(OWNER, str(uuid.uuid4()), 2):
            assert quota_refused(lifecycle, 2).details == {"max_active_jobs": 2}
        with lifecycle.reserve(OWNER, str(uuid.uuid4()), 2):  # the second one's came back
            pass
    assert client.zcard(keys.owner_uploads(OWNER)) == 0
    with (lifecycle.reserve("another-key", str(uuid.uuid4()), 1),  # each key its own
          lifecycle.reserve(OWNER, str(uuid.uuid4()), 1)):
        pass


def test_the_slot_becomes_the_job_on_submit(lifecycle, client):
    job_id = str(uuid.uuid4())
    with lifecycle.reserve(OWNER, job_id, 1):
        lifecycle.submit(job_id, receiver(job_id), max_active=1)
        assert client.zcard(keys.owner_uploads(OWNER)) == 0  # counted once: as the job
        assert client.zscore(keys.owner_active(OWNER), job_id) is not None
    quota_refused(lifecycle, 1)  # the job holds it now
    lifecycle.cancel_or_delete(job_id, OWNER)
    with lifecycle.reserve(OWNER, str(uuid.uuid4()), 1):
        pass


def test_a_failed_upload_gives_its_slot_back(lifecycle, client, tmp_path):
    job_id = str(uuid.uuid4())
    with pytest.raises(ServiceError), lifecycle.reserve(OWNER, job_id, 1):
        lifecycle.submit(job_id, receiver(job_id, fail=True), max_active=1)
    assert client.zcard(keys.owner_uploads(OWNER)) == 0
    assert not (tmp_path / "jobs" / job_id).exists()
    again = str(uuid.uuid4())
    with lifecycle.reserve(OWNER, again, 1):
        lifecycle.submit(again, receiver(again), max_active=1)


def test_a_slot_nobody_refreshes_lapses(store, client, tmp_path):
    """A dead API process refreshes nothing: its upload's slot comes back after the lifetime."""
    assert store.reserve(OWNER, "dead-upload", 1, seconds=1)
    lifecycle = make_lifecycle(store, client, tmp_path)
    quota_refused(lifecycle, 1)
    time.sleep(1.1)
    with lifecycle.reserve(OWNER, str(uuid.uuid4()), 1):
        pass


def test_a_slot_is_refreshed_while_the_upload_lasts(store, client, tmp_path):
    lifecycle = make_lifecycle(store, client, tmp_path, seconds=1)
    upload_id = str(uuid.uuid4())
    with lifecycle.reserve(OWNER, upload_id, 1):
        time.sleep(2.5)  # over twice its lifetime
        assert client.zscore(keys.owner_uploads(OWNER), upload_id) > time.time()
        quota_refused(lifecycle, 1)
    assert client.zcard(keys.owner_uploads(OWNER)) == 0


def test_a_lapsed_slot_is_taken_again_on_submit_only_if_there_is_room(store, client, tmp_path):
    lifecycle = make_lifecycle(store, client, tmp_path)
    job_id = str(uuid.uuid4())
    assert store.reserve(OWNER, job_id, 1, seconds=1)
    time.sleep(1.1)  # lapsed (its process paused): another upload takes the slot
    assert store.reserve(OWNER, "other", 1, seconds=60)
    with pytest.raises(ServiceError) as caught:
        lifecycle.submit(job_id, receiver(job_id), max_active=1)
    assert caught.value.code == "QUOTA_EXCEEDED"
    assert not (tmp_path / "jobs" / job_id).exists()
