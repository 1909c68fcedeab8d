"""GET /jobs/<id>/result on both storage backends: a broken download resumes with `Range`
(RFC 9110), `If-Range` makes sure the rest is of the same result, and a range outside the
result is refused in the service's error shape."""

from __future__ import annotations

import pytest
import requests

from testkit.jobs_api import accepted_job, download, error_of, submit_file


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
