"""jobs/storage.py and jobs/storage_s3.py: atomic writes, nothing left behind on failure, ids
checked first. Every test runs against every backend (the local directory and a real S3 server,
SeaweedFS); the S3-only tests at the end check aborted multipart uploads and flat memory."""

from __future__ import annotations

import os
import time
import tracemalloc
import uuid

import pytest

from common.errors import StorageError
from jobs.storage import LocalStorage
from jobs.storage_s3 import S3Storage

MiB = 1024 * 1024
PART = 5 * MiB  # S3's smallest part: the tests cross part boundaries with little data


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path)
    server = request.getfixturevalue("s3_server")
    return S3Storage(server.client(), server.BUCKET, f"t-{uuid.uuid4().hex}", part_size=PART)


@pytest.fixture
def s3(s3_server):
    return S3Storage(s3_server.client(), s3_server.BUCKET, f"t-{uuid.uuid4().hex}",
                     part_size=PART)


def names(storage, job_id: str) -> list[str]:
    """The job's files or objects, finished or not (partial files, pending uploads)."""
    if isinstance(storage, LocalStorage):
        directory = storage.jobs_dir / job_id
        return sorted(p.name for p in directory.iterdir()) if directory.exists() else []
    prefix = storage.job_prefix(job_id)
    found = [item["Key"][len(prefix):] for item in storage._list(prefix)]
    uploads = storage.client.list_multipart_uploads(Bucket=storage.bucket, Prefix=prefix)
    found += [f"pending:{u['Key'][len(prefix):]}" for u in uploads.get("Uploads", [])]
    return sorted(found)


def test_input_round_trip(storage):
    job_id = str(uuid.uuid4())
    assert storage.save_input(job_id, [b"<a>", b"1</a>"]) == 8
    with storage.open_input(job_id) as handle:
        assert handle.read() == b"<a>1</a>"
    assert names(storage, job_id) == ["input.xml"]
    storage.delete_input(job_id)
    with pytest.raises(StorageError):
        storage.open_input(job_id)


def test_large_input_round_trip_across_parts(storage):
    job_id = str(uuid.uuid4())
    block = os.urandom(64 * 1024)
    count = (2 * PART + PART // 2) // len(block)
    assert storage.save_input(job_id, (block for _ in range(count))) == count * len(block)
    with storage.open_input(job_id) as handle:
        assert handle.seek(0, os.SEEK_END) == count * len(block)  # the size, for progress
        handle.seek(0)
        assert handle.read(len(block)) == block
        handle.seek(len(block) * (count - 1))
        assert handle.read() == block
    assert names(storage, job_id) == ["input.xml"]


def test_failed_upload_leaves_nothing(storage):
    job_id = str(uuid.uuid4())

    def chunks():
        yield b"<a>"
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        storage.save_input(job_id, chunks())
    assert names(storage, job_id) == []


def test_result_appears_only_when_complete(storage):
    job_id = str(uuid.uuid4())
    with pytest.raises(RuntimeError), storage.write_result(job_id, "json") as out:
        out.write(b"{partial")
        raise RuntimeError("cancelled")
    assert names(storage, job_id) == []
    with storage.write_result(job_id, "json") as out:
        out.write(b"{}")
        assert out.tell() == 2
        with pytest.raises(StorageError):
            storage.open_result(job_id, "json")
    with storage.open_result(job_id, "json") as handle:
        assert handle.read() == b"{}"
    storage.discard_output(job_id)
    with pytest.raises(StorageError):
        storage.open_result(job_id, "json")


def test_delete_removes_everything_of_the_job(storage):
    job_id, other = str(uuid.uuid4()), str(uuid.uuid4())
    storage.save_input(job_id, [b"<a/>"])
    storage.save_input(other, [b"<a/>"])
    with storage.write_result(job_id, "csv") as out:
        out.write(b"a\n")
    storage.delete(job_id)
    assert names(storage, job_id) == []
    assert names(storage, other) == ["input.xml"]
    storage.delete(job_id)  # twice is fine


UUID1 = "c3462108-ec1f-11f1-af4d-02fc00000001"  # a valid UUID, but not a version 4 one


@pytest.mark.parametrize("bad", ["../etc", "x", UUID1, "", "/tmp"])
def test_ids_are_checked_before_paths_are_built(storage, bad):
    with pytest.raises(StorageError):
        storage.save_input(bad, [b"x"])
    with pytest.raises(StorageError):
        storage.delete(bad)
    with pytest.raises(StorageError):
        storage.open_result(bad, "json")


def test_expired_lists_old_jobs(storage):
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    storage.save_input(old, [b"<a/>"])
    if isinstance(storage, LocalStorage):
        past = time.time() - 7200
        for path in [storage.jobs_dir / old, *(storage.jobs_dir / old).iterdir()]:
            os.utime(path, (past, past))
        age = 3600.0
    else:  # an object's time is the server's: let it age (S3 keeps whole seconds)
        time.sleep(3.2)
        age = 2.0
    storage.save_input(new, [b"<a/>"])
    assert list(storage.expired(age)) == [old]


def test_check_writable(storage, tmp_path):
    storage.check_writable()
    if isinstance(storage, LocalStorage):
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".probe")]
    else:
        answer = storage.client.list_objects_v2(Bucket=storage.bucket, Prefix=storage.prefix)
        assert answer.get("KeyCount", 0) == 0


# -- S3 only


def test_s3_keys_live_under_the_prefix(s3):
    job_id = str(uuid.uuid4())
    s3.save_input(job_id, [b"<a/>"])
    with s3.write_result(job_id, "jsonl") as out:
        out.write(b"{}\n")
    keys = [item["Key"] for item in s3._list(s3.prefix)]
    assert sorted(keys) == [f"{s3.prefix}/jobs/{job_id}/input.xml",
                            f"{s3.prefix}/jobs/{job_id}/result.jsonl"]


def test_s3_an_aborted_multipart_save_leaves_no_object_and_no_pending_upload(s3):
    job_id = str(uuid.uuid4())

    def chunks():
        for _ in range(2 * PART // MiB + 1):  # two parts sent, then the client goes away
            yield b"x" * MiB
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        s3.save_input(job_id, chunks())
    assert s3.client.list_objects_v2(Bucket=s3.bucket, Prefix=s3.prefix).get("KeyCount") == 0
    uploads = s3.client.list_multipart_uploads(Bucket=s3.bucket, Prefix=s3.prefix)
    assert uploads.get("Uploads", []) == []


def test_s3_a_failed_multipart_result_leaves_no_object_and_no_pending_upload(s3):
    job_id = str(uuid.uuid4())
    with pytest.raises(RuntimeError), s3.write_result(job_id, "json") as out:
        for _ in range(2 * PART // MiB + 1):
            out.write(b"y" * MiB)
        raise RuntimeError("conversion failed")
    assert names(s3, job_id) == []


def test_s3_memory_stays_flat_while_saving_64_mib_in_small_chunks(s3):
    job_id = str(uuid.uuid4())
    chunk = b"z" * (64 * 1024)
    total = 64 * MiB
    tracemalloc.start()
    try:
        saved = s3.save_input(job_id, (chunk for _ in range(total // len(chunk))))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert saved == total
    print(f"peak Python memory while saving 64 MiB with 5 MiB parts: {peak / MiB:.1f} MiB")
    assert peak < 4 * PART  # a part buffered plus the copy sent, not the whole stream
    with s3.open_input(job_id) as handle:
        tracemalloc.start()
        try:
            read = 0
            while block := handle.read(64 * 1024):
                read += len(block)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert read == total
    assert peak < 8 * MiB


def test_the_origin_direct_uploads_go_to(storage, request):
    """Where the page's script may PUT a direct upload's parts (its Content-Security-Policy):
    the store's origin, or none for a local directory (it has no direct uploads)."""
    if isinstance(storage, LocalStorage):
        assert storage.direct_upload_origin() is None
        return
    server = request.getfixturevalue("s3_server")
    assert storage.direct_upload_origin() == server.endpoint
    job_id = str(uuid.uuid4())
    offered = storage.start_direct_upload(job_id, 1, 60)
    assert all(url.startswith(server.endpoint + "/") for url in offered.urls)
    storage.abort_direct_upload(job_id, offered.storage_upload_id)
