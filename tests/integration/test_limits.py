"""Per-key limits on the real stack (AUTH_MODE=api_key: gunicorn, a Celery worker, Redis):
requests per minute (429 RATE_LIMITED, RateLimit-* headers, one counter per key in Redis that
every API process shares) and unfinished jobs (429 QUOTA_EXCEEDED before the body is read)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests

from jobs import keys
from jobs.lifecycle import RETRY_AFTER_SECONDS
from testkit import MiB
from testkit.jobs_api import error_of

UNKNOWN_JOB = "3f0c8a52-2b4e-4d7a-9a45-1c9a4b1f2e3d"
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
DOC = b"<orders><order id='1'><item>tea</item></order></orders>"


def unique(name: str) -> str:
    return f"{name}-{time.monotonic_ns()}"


def allowance(response: requests.Response) -> tuple[int, int, int]:
    """(limit, remaining, seconds to reset) from the RateLimit-* headers."""
    limit, remaining, reset = (int(response.headers[name]) for name in RATE_HEADERS)
    assert 0 <= reset <= 60
    return limit, remaining, reset


def unlabelled(response: requests.Response) -> bool:
    return not set(RATE_HEADERS) & set(response.headers.keys())


def submit(url: str, headers: dict, doc: bytes = DOC) -> requests.Response:
    return requests.post(url + "/jobs?format=csv", data=doc, timeout=120,
                         headers={**headers, "Content-Type": "application/xml"})


def test_a_key_gets_its_requests_per_minute_then_429_and_others_keep_theirs(keyed_stack):
    five = keyed_stack.key(unique("five"), "--requests-per-minute", "5")
    other = keyed_stack.key(unique("other"))  # RATE_LIMIT_PER_MINUTE: 1000
    url = keyed_stack.url
    # Every route counts, errors raised after authentication included (the 404 here).
    answers = [requests.get(url("/jobs"), headers=five["headers"], timeout=30),
               requests.get(url(f"/jobs/{UNKNOWN_JOB}"), headers=five["headers"], timeout=30),
               requests.get(url("/jobs"), headers=five["headers"], timeout=30),
               requests.get(url("/jobs?limit=1"), headers=five["headers"], timeout=30),
               requests.get(url("/jobs"), headers=five["headers"], timeout=30)]
    assert [r.status_code for r in answers] == [200, 404, 200, 200, 200]
    assert [allowance(r)[:2] for r in answers] == [(5, 4), (5, 3), (5, 2), (5, 1), (5, 0)]
    assert all("Retry-After" not in r.headers for r in answers)

    refused = requests.get(url("/jobs"), headers=five["headers"], timeout=30)
    error = error_of(refused, 429, "RATE_LIMITED")
    assert error["details"] == {"requests_per_minute": 5}
    limit, remaining, reset = allowance(refused)
    assert (limit, remaining) == (5, 0)
    assert int(refused.headers["Retry-After"]) == max(1, reset)
    # The rate limit comes before every other check of an upload: this body would be a 415.
    upload = requests.post(url("/jobs"), data=b"not xml", headers={
        **five["headers"], "Content-Type": "text/plain"}, timeout=30)
    error_of(upload, 429, "RATE_LIMITED")
    assert upload.headers["Connection"] == "close" and allowance(upload)[:2] == (5, 0)
    error_of(requests.post(url("/convert/xml-to-json"), data=DOC, headers=five["headers"],
                           timeout=30), 429, "RATE_LIMITED")

    # Another key has its own counter; its jobs work as ever.
    theirs = submit(keyed_stack.api_url, other["headers"])
    assert theirs.status_code == 202 and allowance(theirs)[:2] == (1000, 999)
    assert theirs.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)  # the polling hint, as ever
    # No key (401) and health: not counted, not labelled.
    nobody = requests.get(url("/jobs"), timeout=30)
    error_of(nobody, 401, "UNAUTHENTICATED")
    assert unlabelled(nobody)
    for path in ("/health", "/health/ready"):
        health = requests.get(url(path), headers=five["headers"], timeout=30)
        assert health.status_code == 200 and unlabelled(health)
    job = keyed_stack.wait_finished(theirs.json()["id"], other["headers"])
    assert job["status"] == "succeeded"


@pytest.fixture
def second_api(keyed_stack):
    """Another API replica of the keyed stack (same Redis), with two gunicorn workers."""
    with keyed_stack.another_api("api2", API_WORKERS="2") as url:
        yield url


def test_the_counter_is_shared_by_every_api_process(keyed_stack, second_api):
    six = keyed_stack.key(unique("six"), "--requests-per-minute", "6")
    apis = [keyed_stack.api_url, second_api]
    seen = []
    for i in range(6):  # alternating replicas, a new connection each time
        response = requests.get(apis[i % 2] + "/jobs", headers=six["headers"], timeout=30)
        assert response.status_code == 200, response.text
        seen.append(allowance(response)[1])
    assert seen == [5, 4, 3, 2, 1, 0]
    for api in apis:
        error_of(requests.get(api + "/jobs", headers=six["headers"], timeout=30),
                 429, "RATE_LIMITED")
    # One counter in Redis, under the service's prefix, with the window as its lifetime.
    store = keyed_stack.client()
    (counter,) = store.keys(f"{keys.rate_limits()}:*{six['id']}*")
    assert store.get(counter) == "8" and 0 < store.ttl(counter) <= 60


def post_paced(url: str, headers: dict, total: int, per_second: int) -> tuple[int, dict, int]:
    """POST a raw XML body of `total` bytes at about `per_second`; returns (status, JSON body,
    bytes sent when the answer's status line came)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    connection.putrequest("POST", "/jobs?format=csv")
    for name, value in {**headers, "Content-Type": "application/xml",
                        "Content-Length": str(total), "Connection": "close"}.items():
        connection.putheader(name, value)
    connection.endheaders()
    sock = connection.sock
    sent = 0
    answered = threading.Event()

    def feed() -> None:
        nonlocal sent
        chunk = b"<orders>" + b" " * (MiB // 4 - 8)
        try:
            while sent < total and not answered.is_set():
                sock.sendall(chunk[:total - sent])
                sent += min(len(chunk), total - sent)
                time.sleep(len(chunk) / per_second)
        except OSError:
            pass  # the server closed the connection: it wants no more

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    response = http.client.HTTPResponse(sock, method="POST")
    response.begin()
    sent_then = sent
    answered.set()
    body = response.read()
    feeder.join(timeout=10)
    connection.close()
    return response.status, {"headers": dict(response.getheaders()),
                             **json.loads(body)}, sent_then


def test_max_active_jobs_refuses_a_second_upload_before_its_body(keyed_stack, tmp_path):
    from bench.generate import generate

    one = keyed_stack.key(unique("one-at-a-time"), "--max-active-jobs", "1")
    headers = one["headers"]
    big = tmp_path / "big.xml"
    generate(80, big)  # converts to CSV in a few seconds: still active when the next comes
    with open(big, "rb") as handle:
        first = requests.post(keyed_stack.url("/jobs?format=csv"), data=handle, timeout=120,
                              headers={**headers, "Content-Type": "application/xml"})
    assert first.status_code == 202, first.text
    first_id = first.json()["id"]
    before = keyed_stack.job_dirs()

    # 80 MiB announced (under MAX_UPLOAD_BYTES), sent at 8 MiB/s: ten seconds to send it all.
    status, answer, sent = post_paced(keyed_stack.api_url, headers, 80 * MiB, 8 * MiB)
    assert status == 429 and answer["error"]["code"] == "QUOTA_EXCEEDED", answer
    assert answer["error"]["details"] == {"max_active_jobs": 1}
    assert int(answer["headers"]["Retry-After"]) > 0
    assert "RateLimit-Remaining" in answer["headers"]  # a counted request like any other
    assert sent < 40 * MiB  # answered long before the body was all sent
    assert keyed_stack.job_dirs() == before  # nothing kept of it
    # The refusal left the first job alone (it may have finished meanwhile).
    assert requests.get(keyed_stack.url(f"/jobs/{first_id}"), headers=headers,
                        timeout=30).json()["status"] in ("queued", "running", "succeeded")

    # Once the first has finished (cancelled here, unless it succeeded meanwhile: then it is
    # deleted), the key can submit again.
    ended = requests.delete(keyed_stack.url(f"/jobs/{first_id}"), headers=headers, timeout=30)
    assert ended.status_code in (202, 204), ended.text
    if ended.status_code == 202:
        assert keyed_stack.wait_finished(first_id, headers)["status"] == "cancelled"
    again = submit(keyed_stack.api_url, headers)
    assert again.status_code == 202, again.text
    assert keyed_stack.wait_finished(again.json()["id"], headers)["status"] == "succeeded"
    third = submit(keyed_stack.api_url, headers)  # a job that succeeded frees its place too
    assert third.status_code == 202, third.text
    keyed_stack.wait_finished(third.json()["id"], headers)
