"""Upload size limits, decided up front and while streaming, in flat API memory."""

from __future__ import annotations

import gzip
import http.client
import zlib
from urllib.parse import urlsplit

import requests

from testkit import MiB
from testkit.commands import MAX_UPLOAD
from testkit.jobs_api import accepted_job, error_of, submit_file
from testkit.service import vm_hwm_kib

CHUNK = b"<r>" + b"x" * (MiB - 7) + b"</r>\n"


def chunked_post(url: str, path: str, headers: dict[str, str], chunks) -> tuple[int, dict, bytes]:
    """POST with Transfer-Encoding: chunked (no Content-Length: the limit must be found while
    streaming). Tolerates the server closing early after answering."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    connection.putrequest("POST", path)
    for name, value in {**headers, "Transfer-Encoding": "chunked"}.items():
        connection.putheader(name, value)
    connection.endheaders()
    try:
        for chunk in chunks:
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        connection.send(b"0\r\n\r\n")
    except (TimeoutError, BrokenPipeError, ConnectionResetError):
        pass  # the server stopped reading: its answer is waiting
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), body


def test_content_length_over_the_limit_is_refused_before_reading(stack):
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(stack.api_url).port, timeout=30)
    connection.putrequest("POST", "/jobs")
    connection.putheader("Content-Type", "application/xml")
    connection.putheader("Content-Length", str(MAX_UPLOAD + 10 * MiB))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert b"PAYLOAD_TOO_LARGE" in response.read()
    connection.close()


def test_streamed_body_over_the_limit_stops_at_the_limit_in_flat_memory(stack):
    before_dirs = stack.job_dirs()
    pid = stack.api_worker_pid()
    peak_before = vm_hwm_kib(pid)
    chunks = (CHUNK for _ in range(MAX_UPLOAD // MiB + 4))
    status, headers, body = chunked_post(stack.api_url, "/jobs",
                                         {"Content-Type": "application/xml"}, chunks)
    assert status == 413, body
    assert b'"PAYLOAD_TOO_LARGE"' in body
    assert stack.job_dirs() == before_dirs  # the partial file is gone
    grown_mib = (vm_hwm_kib(pid) - peak_before) / 1024
    assert grown_mib < 40, f"API peak memory grew by {grown_mib:.0f} MiB during the upload"
    assert vm_hwm_kib(pid) < 150 * 1024


def test_gzip_bomb_stops_at_the_decompressed_limit(stack):
    # ~100 KiB of gzip that expands to twice the upload limit.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * MiB
    bomb = b"".join(compressor.compress(zeros) for _ in range(2 * MAX_UPLOAD // MiB))
    bomb += compressor.flush()
    assert len(bomb) < 1 * MiB
    before_dirs = stack.job_dirs()
    response = requests.post(stack.url("/jobs"), data=bomb, timeout=60, headers={
        "Content-Type": "application/xml", "Content-Encoding": "gzip"})
    error_of(response, 413, "PAYLOAD_TOO_LARGE")
    assert stack.job_dirs() == before_dirs


def test_corrupt_gzip_is_a_400(stack):
    body = gzip.compress(b"<a>1</a>")[:-6] + b"garbage!"
    response = requests.post(stack.url("/jobs"), data=body, timeout=30, headers={
        "Content-Type": "application/xml", "Content-Encoding": "gzip"})
    error_of(response, 400, "INVALID_GZIP")


def test_large_upload_streams_in_flat_memory(stack, samples):
    pid = stack.api_worker_pid()
    peak_before = vm_hwm_kib(pid)
    job = accepted_job(submit_file(stack, samples["big"], data={"format": "jsonl"}))
    assert job["input"]["size_bytes"] == samples["big"].stat().st_size
    grown_mib = (vm_hwm_kib(pid) - peak_before) / 1024
    assert grown_mib < 40, f"API peak memory grew by {grown_mib:.0f} MiB during the upload"
    assert vm_hwm_kib(pid) < 150 * 1024
    assert requests.delete(stack.url(f"/jobs/{job['id']}"), timeout=10).status_code in (202, 204)
    stack.wait_finished(job["id"])
