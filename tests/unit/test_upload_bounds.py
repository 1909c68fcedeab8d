"""api/upload.py and jobs/storage.py bounded whatever the body's shape (issue 18): gzip of very
many members in linear time and at most MAX_GZIP_MEMBERS of them, multipart forms whose field
names count toward the field limit and whose parts are capped, and uploads that stop before the
disk's free space falls under STORAGE_MIN_FREE_BYTES. Real requests (werkzeug's EnvironBuilder),
real LocalStorage under tmp_path; nothing is kept of a refused upload."""

from __future__ import annotations

import gzip
import time
import uuid

import pytest
from test_api_upload import (
    MULTIPART,
    Part,
    accepted,
    assert_error,
    file_part,
    form_field,
    make_request,
    multipart,
)

from api import upload
from api.upload import gunzip, receive_upload
from common.errors import ServiceError, StorageFull
from jobs.storage import LocalStorage

MiB = 1024 * 1024
EMPTY_MEMBER = gzip.compress(b"", mtime=0)  # 20 bytes
DOC = b"<orders><order id='1'/></orders>"


@pytest.fixture
def storage(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path)


def refused(storage: LocalStorage, request, **bounds) -> ServiceError:
    job_id = str(uuid.uuid4())
    with pytest.raises(ServiceError) as caught:
        receive_upload(request, storage, job_id, 64 * MiB, **bounds)
    assert not (storage.jobs_dir / job_id).exists()
    return caught.value


def members(n: int) -> bytes:
    """A document in its first member, then n - 1 empty ones: the issue's recipe."""
    return gzip.compress(DOC, mtime=0) + EMPTY_MEMBER * (n - 1)


def gunzip_seconds(body: bytes) -> float:
    pieces = [body[i:i + upload.CHUNK_BYTES] for i in range(0, len(body), upload.CHUNK_BYTES)]
    started = time.perf_counter()
    assert b"".join(gunzip(pieces)) == DOC
    return time.perf_counter() - started


# --------------------------------------------------------------------------- gzip members


def test_empty_gzip_members_cost_linear_time():
    """50,000 empty members in one 1 MiB chunk took ~6 s (each copied the rest of the chunk
    through unused_data): now a fraction of a second, and four times as many take about four
    times as long, not sixteen."""
    small = gunzip_seconds(members(50_000))
    large = gunzip_seconds(members(200_000))
    assert small < 1.0, f"50,000 members took {small:.2f} s"
    assert large < 8 * small + 0.2, f"200,000 members: {large:.2f} s vs {small:.2f} s"


def test_gzip_members_are_taken_up_to_the_cap_and_refused_beyond(storage):
    body = members(1000)
    request = make_request(body, headers={"Content-Encoding": "gzip"})
    _, stored = accepted_with(storage, request, max_gzip_members=1000)
    assert stored == DOC
    error = refused(storage, make_request(body, headers={"Content-Encoding": "gzip"}),
                    max_gzip_members=999)
    assert_error(error, 413, "TOO_MANY_GZIP_MEMBERS")
    assert error.details == {"max_members": 999}
    assert error.headers["Connection"] == "close"


@pytest.mark.parametrize("where", ["content-encoding", ".gz name", "part"])
def test_the_member_cap_holds_however_gzip_arrives(storage, where):
    body = members(300)
    if where == "content-encoding":
        request = make_request(body, headers={"Content-Encoding": "gzip"})
    elif where == ".gz name":
        request = make_request(body, query={"filename": "orders.xml.gz"})
    else:
        request = make_request(multipart(file_part(body, "orders.xml.gz", "application/gzip")),
                               MULTIPART)
    assert_error(refused(storage, request, max_gzip_members=100), 413, "TOO_MANY_GZIP_MEMBERS")


def test_zero_padding_between_members_is_skipped_in_linear_time():
    body = b"".join(gzip.compress(b"", mtime=0) + b"\0" * 7 for _ in range(100_000))
    body = gzip.compress(DOC, mtime=0) + body
    assert gunzip_seconds(body) < 2.0


def test_gunzip_takes_turns_while_it_finds_no_output(monkeypatch):
    """Other requests get a turn at least every few milliseconds, output or not (under gevent a
    turn is the loop's; here the turns are counted)."""
    turns: list[float] = []
    monkeypatch.setattr(upload, "take_turns", lambda: turns.append(time.monotonic()))
    started = time.monotonic()
    gunzip_seconds(members(200_000))
    points = [started, *turns, time.monotonic()]
    longest = max(b - a for a, b in zip(points, points[1:], strict=False))
    assert len(turns) > 2 and longest < 0.1, f"{len(turns)} turns, longest gap {longest:.3f} s"


def accepted_with(storage: LocalStorage, request, **bounds):
    job_id = str(uuid.uuid4())
    received = receive_upload(request, storage, job_id, 64 * MiB, **bounds)
    with storage.open_input(job_id) as handle:
        return received, handle.read()


# --------------------------------------------------------------------------- multipart


def test_a_long_field_name_counts_toward_the_field_limit(storage):
    """The issue's 1,500 parts with 200 KB names: refused at the first, before it is kept."""
    name = "n" * 200_000
    parts = [form_field(f"{name}{i}", "v") for i in range(3)]
    error = refused(storage, make_request(multipart(*parts, file_part(DOC)), MULTIPART))
    assert_error(error, 400, "INVALID_REQUEST")
    assert error.details == {"max_fields_bytes": upload.MAX_FIELDS_BYTES}


def test_names_and_values_together_are_limited(storage):
    half = upload.MAX_FIELDS_BYTES // 2
    within = [form_field("n" * (half - 10), "v" * 10), form_field("m" * 10, "w" * (half - 10))]
    request = make_request(multipart(*within, file_part(DOC)), MULTIPART)
    received, _ = accepted(storage, request)
    assert len(received.fields) == 2
    over = [*within, form_field("x", "")]
    error = refused(storage, make_request(multipart(*over, file_part(DOC)), MULTIPART))
    assert_error(error, 400, "INVALID_REQUEST")


@pytest.mark.parametrize("kind", ["fields", "other files", "nameless"])
def test_parts_are_taken_up_to_the_cap_and_refused_beyond(storage, kind):
    def part(i: int) -> Part:
        if kind == "fields":
            return form_field(f"f{i}", "")
        if kind == "other files":
            return Part(f"attachment{i}", b"", f"a{i}.txt", "text/plain")
        return Part(None, b"x", head=b"Content-Disposition: form-data")

    others = [part(i) for i in range(9)]
    body = multipart(*others, file_part(DOC))  # ten parts
    received, stored = accepted_with(storage, make_request(body, MULTIPART), max_form_parts=10)
    assert stored == DOC
    error = refused(storage, make_request(body, MULTIPART), max_form_parts=9)
    assert_error(error, 413, "TOO_MANY_FORM_PARTS")
    assert error.details == {"max_parts": 9}
    assert error.headers["Connection"] == "close"


def test_many_tiny_parts_are_refused_at_the_cap_without_reading_them_all(storage):
    body = multipart(*(form_field("f", "") for _ in range(100_000)), file_part(DOC))
    request = make_request(body, MULTIPART, sizes=[64 * 1024])
    started = time.perf_counter()
    assert_error(refused(storage, request, max_form_parts=100), 413, "TOO_MANY_FORM_PARTS")
    assert time.perf_counter() - started < 1.0
    assert request.environ["wsgi.input"].pos < len(body) // 10


# --------------------------------------------------------------------------- free space


def test_storage_reports_its_free_space(tmp_path):
    storage = LocalStorage(tmp_path)
    assert storage.free_bytes() > 0
    storage.check_room(10**18)  # no floor: nothing refused by the check itself


def test_an_upload_that_would_cross_the_floor_stops_and_nothing_is_kept(tmp_path):
    """The floor is set a few MiB under this filesystem's actual free space, so that a real
    64 MiB upload crosses it (other writers on the disk only make it cross sooner)."""
    probe = LocalStorage(tmp_path)
    storage = LocalStorage(tmp_path, min_free_bytes=probe.free_bytes() - 4 * MiB)
    job_id = str(uuid.uuid4())
    written: list[int] = []

    def chunks():
        for _ in range(64):
            written.append(MiB)
            yield b"x" * MiB

    with pytest.raises(StorageFull) as caught:
        storage.save_input(job_id, chunks())
    assert caught.value.min_free_bytes == storage.min_free_bytes
    assert len(written) <= 5
    assert not (storage.jobs_dir / job_id).exists()


def test_check_room_refuses_an_announced_size_over_the_floor(tmp_path):
    free = LocalStorage(tmp_path).free_bytes()
    storage = LocalStorage(tmp_path, min_free_bytes=free // 2)
    storage.check_room(MiB)
    with pytest.raises(StorageFull):
        storage.check_room(free)
