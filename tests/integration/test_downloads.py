"""GET /jobs/<id>/result on both storage backends: a broken download resumes with `Range`
(RFC 9110), `If-Range` makes sure the rest is of the same result, and a range outside the
result is refused in the service's error shape. A client that reads slower than
DOWNLOAD_MIN_BYTES_PER_SECOND is closed, while others are served."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests

from testkit.jobs_api import accepted_job, download, error_of, submit_file
from testkit.stack import Stack


@pytest.fixture(scope="module", params=["file", "s3"])
def any_stack(request):
    return request.getfixturevalue("stack" if request.param == "file" else "s3_stack")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    from bench.generate import generate

    path = tmp_path_factory.mktemp("downloads") / "orders.xml"
    generate(1.5, path)
    return path


@pytest.fixture(scope="module")
def finished(any_stack, source):
    """A succeeded job of about a megabyte (several of the API's read blocks) and its result."""
    job = accepted_job(submit_file(any_stack, source, data={"format": "jsonl"}))
    assert any_stack.wait_finished(job["id"])["status"] == "succeeded"
    whole = download(any_stack, job["id"])
    assert len(whole.content) > 600_000, "the sample is meant to span several blocks"
    return any_stack, job["id"], whole


def get_result(stack, job_id: str, **headers: str) -> requests.Response:
    return requests.get(stack.url(f"/jobs/{job_id}/result"), timeout=60,
                        headers={k.replace("_", "-"): v for k, v in headers.items()})


def test_a_whole_download_names_its_version_and_offers_ranges(finished):
    _, _, whole = finished
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["ETag"].startswith('"') and whole.headers["Last-Modified"]
    assert int(whole.headers["Content-Length"]) == len(whole.content)


def test_a_broken_download_resumes_from_where_it_stopped(finished):
    stack, job_id, whole = finished
    size = len(whole.content)
    # A client that got 300,001 bytes and lost the connection.
    received = bytearray()
    with get_result(stack, job_id) as first:
        for chunk in first.iter_content(65_536):
            received += chunk
            if len(received) > 300_000:
                break
    received = received[:300_001]
    rest = get_result(stack, job_id, Range=f"bytes={len(received)}-",
                      If_Range=whole.headers["ETag"])
    assert rest.status_code == 206, rest.text
    assert rest.headers["Content-Range"] == f"bytes {len(received)}-{size - 1}/{size}"
    assert int(rest.headers["Content-Length"]) == size - len(received)
    assert bytes(received) + rest.content == whole.content


@pytest.mark.parametrize("header, part", [
    ("bytes=0-0", slice(0, 1)),
    ("bytes=400000-700000", slice(400_000, 700_001)),
    ("bytes=-100", slice(-100, None)),
])
def test_any_single_range_is_the_same_bytes_as_the_whole(finished, header, part):
    stack, job_id, whole = finished
    answer = get_result(stack, job_id, Range=header)
    assert answer.status_code == 206, answer.text
    assert answer.content == whole.content[part]


def test_if_range_naming_another_version_gets_the_whole_result(finished):
    stack, job_id, whole = finished
    answer = get_result(stack, job_id, Range="bytes=100-", If_Range='"another-version"')
    assert answer.status_code == 200
    assert answer.content == whole.content


def test_a_range_outside_the_result_is_refused_with_its_size(finished):
    stack, job_id, whole = finished
    size = len(whole.content)
    answer = get_result(stack, job_id, Range=f"bytes={size}-")
    error = error_of(answer, 416, "RANGE_NOT_SATISFIABLE")
    assert answer.headers["Content-Range"] == f"bytes */{size}"
    assert error["details"] == {"size_bytes": size}


def test_an_unchanged_result_is_not_sent_again(finished):
    stack, job_id, whole = finished
    answer = get_result(stack, job_id, If_None_Match=whole.headers["ETag"])
    assert answer.status_code == 304 and answer.content == b""


# -- a client that reads too slowly

WINDOW = 2  # API_CLIENT_TIMEOUT of this stack: the window the floor is measured over
FLOOR = 256 * 1024  # DOWNLOAD_MIN_BYTES_PER_SECOND of this stack


@pytest.fixture(scope="module")
def paced(redis_server, tmp_path_factory):
    """A stack whose floor is high enough to test in seconds, and a result of several MB
    (more than the kernel's buffers on both sides hold)."""
    from bench.generate import generate

    root = tmp_path_factory.mktemp("paced")
    source = root / "orders.xml"
    generate(8, source)
    with Stack(root / "stack", redis=redis_server, name="paced",
               env={"API_CLIENT_TIMEOUT": str(WINDOW),
                    "DOWNLOAD_MIN_BYTES_PER_SECOND": str(FLOOR)}) as stack:
        job = accepted_job(submit_file(stack, source, data={"format": "jsonl"}))
        assert stack.wait_finished(job["id"])["status"] == "succeeded"
        size = stack.get_job(job["id"])["result"]["size_bytes"]
        assert size > 5_000_000, size
        yield stack, job["id"], size


def slow_reader(port: int, job_id: str, rate: float, range_from: int | None = None):
    """Ask for the result on a socket with a small receive buffer, then read `rate` bytes a
    second. Returns (bytes read, seconds from the request to the server's close)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    extra = f"Range: bytes={range_from}-\r\n" if range_from is not None else ""
    sock.sendall(f"GET /jobs/{job_id}/result HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
    started, got = time.monotonic(), 0
    try:
        while time.monotonic() - started < 60:
            ahead = got / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(min(ahead, 0.05))
                continue
            data = sock.recv(max(1, int(rate / 20)))
            if not data:
                break
            got += len(data)
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return got, time.monotonic() - started


@pytest.mark.parametrize("ranged", [False, True], ids=["whole", "range"])
def test_a_client_reading_under_the_floor_is_closed_and_others_are_served(paced, ranged):
    """The whole result goes out through sendfile, a range through the app's own blocks: both
    paths are paced. A reader at 16 KiB/s (well under the 256 KiB/s floor) is closed within
    two windows of waiting once the buffers are full; meanwhile /health answers at once and a
    client reading at full speed gets the whole result."""
    stack, job_id, size = paced
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.update(zip(("got", "seconds"), slow_reader(
        stack.api_port, job_id, 16 * 1024, 1000 if ranged else None), strict=True)),
        daemon=True)
    thread.start()
    latencies = []
    while thread.is_alive() and len(latencies) < 200:
        start = time.monotonic()
        assert requests.get(stack.url("/health"), timeout=5).status_code == 200
        latencies.append(time.monotonic() - start)
        time.sleep(0.05)
    whole = download(stack, job_id)
    thread.join(30)
    assert not thread.is_alive(), "the slow reader was never closed"
    assert len(whole.content) == size
    # Closed long before the end: the buffers took a little, a few windows passed.
    print(f"\nslow reader: {outcome['got']} of {size} bytes, closed after "
          f"{outcome['seconds']:.1f} s; /health max {max(latencies):.3f} s")
    assert outcome["got"] < size / 4
    assert outcome["seconds"] < 3 * WINDOW + 4
    assert max(latencies) < 1.0
    closed = [json.loads(line) for line in stack.api.lines() if "client_too_slow" in line]
    assert closed and closed[-1]["phase"] == "response"


def test_a_client_reading_above_the_floor_is_not_cut(paced):
    """Twice the floor, steadily, over more than two windows: the whole result arrives."""
    stack, job_id, size = paced
    got, seconds = slow_reader(stack.api_port, job_id, 2 * FLOOR, range_from=size - 3 * FLOOR)
    assert seconds > WINDOW
    assert got > 3 * FLOOR  # the headers, then every byte asked for
