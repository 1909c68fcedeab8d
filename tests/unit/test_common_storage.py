"""common/storage.py: atomic writes, nothing left behind on failure, ids checked first."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from common.errors import StorageError
from common.storage import LocalStorage


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path)


def test_input_round_trip(storage):
    job_id = str(uuid.uuid4())
    assert storage.save_input(job_id, [b"<a>", b"1</a>"]) == 8
    with storage.open_input(job_id) as handle:
        assert handle.read() == b"<a>1</a>"
    assert [p.name for p in (storage.jobs_dir / job_id).iterdir()] == ["input.xml"]
    storage.delete_input(job_id)
    with pytest.raises(StorageError):
        storage.open_input(job_id)


def test_failed_upload_leaves_nothing(storage):
    job_id = str(uuid.uuid4())

    def chunks():
        yield b"<a>"
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        storage.save_input(job_id, chunks())
    assert not (storage.jobs_dir / job_id).exists()


def test_result_appears_only_when_complete(storage):
    job_id = str(uuid.uuid4())
    with pytest.raises(RuntimeError), storage.write_result(job_id, "json") as out:
        out.write(b"{partial")
        raise RuntimeError("cancelled")
    assert list((storage.jobs_dir / job_id).iterdir()) == []
    with storage.write_result(job_id, "json") as out:
        out.write(b"{}")
        assert not (storage.jobs_dir / job_id / "result.json").exists()
    with storage.open_result(job_id, "json") as handle:
        assert handle.read() == b"{}"
    storage.discard_output(job_id)
    with pytest.raises(StorageError):
        storage.open_result(job_id, "json")


UUID1 = "c3462108-ec1f-11f1-af4d-02fc00000001"  # a valid UUID, but not a version 4 one


@pytest.mark.parametrize("bad", ["../etc", "x", UUID1, "", "/tmp"])
def test_ids_are_checked_before_paths_are_built(storage, bad):
    with pytest.raises(StorageError):
        storage.save_input(bad, [b"x"])
    with pytest.raises(StorageError):
        storage.delete(bad)


def test_expired_lists_old_job_directories(storage):
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    storage.save_input(old, [b"<a/>"])
    storage.save_input(new, [b"<a/>"])
    past = time.time() - 7200
    for path in [storage.jobs_dir / old, *(storage.jobs_dir / old).iterdir()]:
        os.utime(path, (past, past))
    assert list(storage.expired(3600)) == [old]


def test_check_writable(storage, tmp_path):
    storage.check_writable()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".probe")]
