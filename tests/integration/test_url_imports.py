"""Imports by URL end to end (the real API, a worker and redis-server; an HTTP origin on
loopback): POST /jobs?input_url=… queues a job without a body, the worker fetches the URL into
storage and converts it — the same result as an upload; each way a fetch fails is a named error
(INPUT_FETCH_FAILED with its reason) and keeps nothing; without ALLOW_PRIVATE_ADDRESSES a loopback
URL is refused at submission."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
import requests

from client import Client
from jobs import keys
from testkit import BIN
from testkit.jobs_api import accepted_job, download, error_of, submit_file
from testkit.origin import Origin
from testkit.stack import Stack

MAX_BYTES = 1024 * 1024
DEADLINE = 4


@pytest.fixture(scope="module")
def imports(redis_server, tmp_path_factory):
    """A stack that may fetch from loopback (the switch by its old name: it still works), with a
    short fetch deadline and a 1 MiB size limit."""
    with Stack(tmp_path_factory.mktemp("imports"), redis=redis_server, name="imports",
               env={"WEBHOOK_ALLOW_PRIVATE": "true", "INPUT_FETCH_TIMEOUT": str(DEADLINE),
                    "INPUT_FETCH_MIN_BYTES_PER_SECOND": "0",
                    "MAX_UPLOAD_BYTES": str(MAX_BYTES)}) as stack:
        yield stack


@pytest.fixture(scope="module")
def origin():
    with Origin() as server:
        yield server


def submit_url(stack, url: str, **params: str):
    return requests.post(stack.url("/jobs"), params={"input_url": url, **params}, timeout=30)


def failed_fetch(stack, url: str) -> dict:
    job = accepted_job(submit_url(stack, url))
    done = stack.wait_finished(job["id"], timeout=30)
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "INPUT_FETCH_FAILED", done["error"]
    assert done["result"] is None
    return done


def test_an_imported_job_converts_as_an_upload_does(imports, origin, samples):
    data = samples["small"].read_bytes()
    url = origin.route("/exports/orders.xml", Origin.file(data, framing="chunked"))
    signed = url + "?X-Amz-Signature=s3cr3t&X-Amz-Expires=300"
    response = submit_url(imports, signed, format="csv", tag="nightly",
                          metadata=json.dumps({"batch": 7}))
    job = accepted_job(response)
    assert job["input"]["url"] == url  # shown without its query string
    assert job["input"]["filename"] == "orders.xml"
    assert job["progress"]["stage"] == "fetching"
    assert (job["tag"], job["metadata"]) == ("nightly", {"batch": 7})
    done = imports.wait_finished(job["id"])
    assert done["status"] == "succeeded", done
    upload = accepted_job(submit_file(imports, samples["small"], data={"format": "csv"}))
    uploaded = imports.wait_finished(upload["id"])
    assert done["input"]["sha256"] == uploaded["input"]["sha256"]
    assert done["input"]["size_bytes"] == len(data)
    assert done["progress"]["stage"] == "converting" and done["progress"]["percent"] == 100.0
    assert download(imports, job["id"]).content == download(imports, upload["id"]).content
    # The origin was asked once, with the query string it was given.
    (head,) = origin.heads("/exports/orders.xml")
    assert b"X-Amz-Signature=s3cr3t" in head
    # Once finished, the signature is kept nowhere in the job's record.
    record = imports.client().hgetall(keys.job(job["id"]))
    assert record and not any("s3cr3t" in str(value) for value in record.values())


def test_the_same_idempotency_key_answers_with_the_same_import(imports, origin, samples):
    url = origin.route("/idem.xml", Origin.file(samples["small"].read_bytes()))
    key = {"Idempotency-Key": f"import-{time.monotonic_ns()}"}
    first = requests.post(imports.url("/jobs"), params={"input_url": url}, headers=key,
                          timeout=30)
    again = requests.post(imports.url("/jobs"), params={"input_url": url + "?sig=new"},
                          headers=key, timeout=30)
    assert first.status_code == 202 and again.status_code in (200, 202)
    assert again.json()["id"] == first.json()["id"]


def test_a_404_is_a_named_failure_with_its_status(imports, origin):
    done = failed_fetch(imports, origin.base + "/missing.xml")
    assert done["error"]["details"] == {"reason": "HTTPStatus", "status": 404}


def test_a_slow_server_past_the_deadline_fails_on_time(imports, origin):
    url = origin.route("/slow.xml", Origin.trickle(b"<a>" + b" " * 100_000 + b"</a>", 1000))
    started = time.monotonic()
    done = failed_fetch(imports, url)
    assert done["error"]["details"] == {"reason": "Timeout"}
    assert time.monotonic() - started < DEADLINE + 10
    assert not any(p.name == "input.xml" for p in imports.local_files())


def test_a_body_past_the_size_limit_is_refused_while_streaming(imports, origin):
    url = origin.route("/huge.xml", Origin.endless())
    done = failed_fetch(imports, url)
    assert done["error"]["details"] == {"reason": "TooLarge", "max_bytes": MAX_BYTES}
    assert not any(p.name.startswith("input.xml") for p in imports.local_files())


def test_a_redirect_to_a_private_address_is_refused(imports, origin):
    url = origin.route("/to-metadata",
                       Origin.redirect("http://169.254.169.254/latest/meta-data/iam"))
    done = failed_fetch(imports, url)
    assert done["error"]["details"] == {"reason": "RedirectRefused", "redirects": 1}
    assert "non-public address" in done["error"]["message"]


def test_a_body_beside_input_url_is_refused(imports, origin, samples):
    response = submit_file(imports, samples["small"], params={"input_url": origin.base + "/x"})
    assert error_of(response, 400, "INVALID_REQUEST")["details"] == {"parameter": "input_url"}


def test_a_loopback_url_is_refused_at_submission_without_the_switch(stack, origin):
    before = stack.job_dirs()
    for url in (origin.base + "/orders.xml", "http://10.1.2.3/orders.xml"):
        error = error_of(submit_url(stack, url), 400, "INVALID_INPUT_URL")
        assert error["details"] == {"parameter": "input_url"}
    assert stack.job_dirs() == before
    assert origin.heads("/orders.xml") == []


def test_the_client_and_the_cli_import_by_url(imports, origin, samples, tmp_path):
    data = samples["small"].read_bytes()
    url = origin.route("/client/orders.xml", Origin.file(data))
    with Client(imports.api_url) as api:
        job = api.wait(api.submit_url(url, "jsonl", {"record_path": "orders/order"},
                                      tag="by-url"))
        assert job["status"] == "succeeded" and job["input"]["url"] == url
        assert job["tag"] == "by-url" and job["options"] == {"record_path": "orders/order"}
    out = tmp_path / "orders.csv"
    env = {**os.environ, "XMLCONV_URL": imports.api_url}
    done = subprocess.run([str(BIN / "xmlconv"), "submit", "--from-url", url, "--to", "csv",
                           "--wait", "-o", str(out)], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    upload = accepted_job(submit_file(imports, samples["small"], data={"format": "csv"}))
    assert imports.wait_finished(upload["id"])["status"] == "succeeded"
    assert out.read_bytes() == download(imports, upload["id"]).content
    both = subprocess.run([str(BIN / "xmlconv"), "submit", str(samples["small"]),
                           "--from-url", url], env=env, capture_output=True, timeout=60)
    assert both.returncode == 2 and b"INVALID_REQUEST" in both.stderr
    missing = subprocess.run([str(BIN / "xmlconv"), "submit", "--from-url", origin.base + "/nope",
                              "--wait"], env=env, capture_output=True, timeout=60)
    assert missing.returncode == 1 and b"INPUT_FETCH_FAILED" in missing.stderr
