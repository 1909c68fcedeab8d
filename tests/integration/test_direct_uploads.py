"""Direct uploads (POST /uploads, the parts PUT straight into the bucket, POST /jobs?upload_id=…)
against a real S3 server (SeaweedFS), a real API under gunicorn and a real worker: the file
never passes through the API, the upload holds its key's quota slot, and an upload that is
another key's, expired, incomplete or too large makes no job."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from client import Client
from testkit import BIN
from testkit.jobs_api import accepted_job, submit_file
from testkit.stack import Stack
from testkit.tcp_meter import TcpMeter
from testkit.waiting import wait_for

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def direct_stack(redis_server, s3_server, tmp_path_factory):
    """s3:// storage, API keys on, one worker."""
    with Stack(tmp_path_factory.mktemp("direct"), redis=redis_server, s3=s3_server, keys=True,
               name="direct", env={"RATE_LIMIT_PER_MINUTE": "1000"}) as stack:
        yield stack


@pytest.fixture(scope="module")
def tight_stack(redis_server, s3_server, tmp_path_factory):
    """s3:// storage with a 10 MiB upload limit and upload URLs that live 3 s; no worker."""
    with Stack(tmp_path_factory.mktemp("tight"), redis=redis_server, s3=s3_server, keys=True,
               workers=0, name="tight",
               env={"MAX_UPLOAD_BYTES": str(10 * MiB), "UPLOAD_URL_TTL_SECONDS": "3",
                    "RATE_LIMIT_PER_MINUTE": "1000"}) as stack:
        yield stack


@pytest.fixture(scope="module")
def large(tmp_path_factory) -> Path:
    """A 24 MB input: three S3 parts."""
    from bench.generate import generate

    path = tmp_path_factory.mktemp("direct-samples") / "large.xml"
    generate(24, path)
    return path


def open_upload(stack: Stack, headers: dict, size: int, filename: str = "input.xml"):
    return requests.post(stack.url("/uploads"), json={"size_bytes": size, "filename": filename},
                         headers=headers, timeout=30)


def put_parts(offer: dict, data: bytes, parts: list[int] | None = None) -> None:
    """PUT the offer's parts (all, or the numbers given) from `data`, with no credentials."""
    for part in offer["parts"]:
        if parts is not None and part["part_number"] not in parts:
            continue
        start = (part["part_number"] - 1) * offer["part_size"]
        answer = requests.put(part["url"], data=data[start:start + part["size_bytes"]],
                              timeout=60)
        assert answer.status_code == 200, answer.text


def submit_upload(stack: Stack, upload_id: str, headers: dict, **params: str):
    return requests.post(stack.url("/jobs"), params={"upload_id": upload_id, **params},
                         headers=headers, timeout=60)


def result_of(stack: Stack, job_id: str, headers: dict) -> bytes:
    answer = requests.get(stack.url(f"/jobs/{job_id}/result"), headers=headers, timeout=120)
    assert answer.status_code == 200, answer.text
    return answer.content


def error_code(response: requests.Response) -> str:
    return response.json()["error"]["code"]


def test_a_large_file_uploaded_directly_converts_like_one_through_the_api(direct_stack, large):
    key = direct_stack.key(f"big-{uuid.uuid4().hex[:6]}")
    size = os.path.getsize(large)
    # Every byte the API receives from this client passes the meter; the parts do not.
    with TcpMeter(direct_stack.api_port) as meter, \
            Client(meter.url, key["api_key"]) as api:
        direct = api.submit(large, "jsonl", tag="direct")
        received = meter.received
        with Client(meter.url, key["api_key"], direct_min_bytes=None) as through_api:
            streamed = through_api.submit(large, "jsonl")
        streamed_bytes = meter.received - received
    assert direct["input"] == {"filename": "large.xml", "size_bytes": size, "sha256": None}
    assert received < 8 * 1024, f"the API received {received} bytes for a {size}-byte file"
    assert streamed_bytes >= size  # the same file through the API
    assert streamed["input"]["sha256"]

    for job in (direct, streamed):
        finished = direct_stack.wait_finished(job["id"], key["headers"], timeout=240)
        assert finished["status"] == "succeeded", finished
    assert (result_of(direct_stack, direct["id"], key["headers"])
            == result_of(direct_stack, streamed["id"], key["headers"]))
    assert direct_stack.local_files() == []


def test_xmlconv_submit_uploads_a_large_file_directly(direct_stack, large, cli_output,
                                                     tmp_path):
    key = direct_stack.key(f"cli-{uuid.uuid4().hex[:6]}")
    out = tmp_path / "large.csv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMLCONV_")}
    with TcpMeter(direct_stack.api_port) as meter:
        done = subprocess.run(
            [str(BIN / "xmlconv"), "submit", str(large), "--to", "csv", "--wait", "-o", str(out)],
            env={**env, "XMLCONV_URL": meter.url, "XMLCONV_API_KEY": key["api_key"]},
            capture_output=True, timeout=300)
        received = meter.received
    assert done.returncode == 0, done.stderr
    assert received < 64 * 1024  # requests and polls, not the file
    assert out.read_bytes() == cli_output(large, "csv")
    (job,) = requests.get(direct_stack.url("/jobs"), headers=key["headers"],
                          timeout=10).json()["jobs"]
    assert job["input"]["sha256"] is None  # the API never read it


def test_the_upload_holds_its_keys_quota_slot_until_given_up_or_made_a_job(direct_stack,
                                                                           samples):
    key = direct_stack.key(f"one-{uuid.uuid4().hex[:6]}", "--max-active-jobs", "1")
    headers = key["headers"]
    data = samples["small"].read_bytes()
    first = open_upload(direct_stack, headers, len(data))
    assert first.status_code == 201, first.text
    offer = first.json()
    assert [p["size_bytes"] for p in offer["parts"]] == [len(data)]
    # The slot is held while the client puts its parts: neither another upload nor a job.
    second = open_upload(direct_stack, headers, len(data))
    assert (second.status_code, error_code(second)) == (429, "QUOTA_EXCEEDED")
    streamed = submit_file(direct_stack, samples["small"], headers=headers)
    assert (streamed.status_code, error_code(streamed)) == (429, "QUOTA_EXCEEDED")
    # Given up: the slot comes back at once, and the upload is gone.
    gone = requests.delete(direct_stack.url(f"/uploads/{offer['id']}"), headers=headers,
                           timeout=10)
    assert gone.status_code == 204, gone.text
    assert direct_stack.objects(offer["id"]) == []
    late = submit_upload(direct_stack, offer["id"], headers)
    assert (late.status_code, error_code(late)) == (410, "UPLOAD_EXPIRED")
    # A new upload takes the slot; made a job, the job holds it.
    third = open_upload(direct_stack, headers, len(data)).json()
    put_parts(third, data)
    job = accepted_job(submit_upload(direct_stack, third["id"], headers, format="csv"))
    assert job["id"] == third["id"]
    again = submit_upload(direct_stack, third["id"], headers, format="csv")  # a retry
    assert again.status_code in (200, 202) and again.json()["id"] == job["id"], again.text
    fourth = open_upload(direct_stack, headers, len(data))
    assert (fourth.status_code, error_code(fourth)) == (429, "QUOTA_EXCEEDED")
    assert direct_stack.wait_finished(job["id"], headers)["status"] == "succeeded"
    assert open_upload(direct_stack, headers, len(data)).status_code == 201


def test_another_keys_upload_is_not_found_and_stays_its_owners(direct_stack, samples):
    owner = direct_stack.key(f"owner-{uuid.uuid4().hex[:6]}")
    other = direct_stack.key(f"other-{uuid.uuid4().hex[:6]}")
    data = samples["small"].read_bytes()
    offer = open_upload(direct_stack, owner["headers"], len(data)).json()
    put_parts(offer, data)
    unknown = submit_upload(direct_stack, str(uuid.uuid4()), other["headers"])
    foreign = submit_upload(direct_stack, offer["id"], other["headers"])
    assert (foreign.status_code, foreign.json()) == (unknown.status_code, unknown.json())
    assert (foreign.status_code, error_code(foreign)) == (404, "UPLOAD_NOT_FOUND")
    deleted = requests.delete(direct_stack.url(f"/uploads/{offer['id']}"),
                              headers=other["headers"], timeout=10)
    assert (deleted.status_code, error_code(deleted)) == (404, "UPLOAD_NOT_FOUND")
    malformed = submit_upload(direct_stack, "../etc", other["headers"])
    assert (malformed.status_code, error_code(malformed)) == (404, "UPLOAD_NOT_FOUND")
    job = accepted_job(submit_upload(direct_stack, offer["id"], owner["headers"]))
    assert direct_stack.wait_finished(job["id"], owner["headers"])["status"] == "succeeded"


def test_an_incomplete_upload_is_refused_and_stays_open(direct_stack, large):
    key = direct_stack.key(f"parts-{uuid.uuid4().hex[:6]}")
    data = large.read_bytes()[:12 * MiB]
    offer = open_upload(direct_stack, key["headers"], len(data)).json()
    assert [p["size_bytes"] for p in offer["parts"]] == [8 * MiB, 4 * MiB]
    put_parts(offer, data, parts=[1])
    early = submit_upload(direct_stack, offer["id"], key["headers"])
    assert (early.status_code, error_code(early)) == (409, "UPLOAD_INCOMPLETE")
    assert early.json()["error"]["details"]["received_bytes"] == 8 * MiB
    put_parts(offer, data, parts=[2])
    job = accepted_job(submit_upload(direct_stack, offer["id"], key["headers"]))
    assert job["input"]["size_bytes"] == len(data)
    requests.delete(direct_stack.url(f"/jobs/{job['id']}"), headers=key["headers"], timeout=10)


def test_a_body_beside_an_upload_id_is_refused(direct_stack, samples):
    key = direct_stack.key(f"body-{uuid.uuid4().hex[:6]}")
    answer = requests.post(direct_stack.url("/jobs"), params={"upload_id": str(uuid.uuid4())},
                           data=b"<a/>", headers={**key["headers"],
                                                  "Content-Type": "application/xml"},
                           timeout=10)
    assert (answer.status_code, error_code(answer)) == (400, "INVALID_REQUEST")


def test_an_upload_past_the_size_limit_is_refused_and_removed(tight_stack):
    key = tight_stack.key(f"big-{uuid.uuid4().hex[:6]}")
    announced = open_upload(tight_stack, key["headers"], 11 * MiB)
    assert (announced.status_code, error_code(announced)) == (413, "PAYLOAD_TOO_LARGE")
    # Announced within the limit, then parts larger than their URLs said.
    offer = open_upload(tight_stack, key["headers"], 9 * MiB).json()
    assert len(offer["parts"]) == 2
    for part in offer["parts"]:
        answer = requests.put(part["url"], data=b"<" * (8 * MiB), timeout=60)
        assert answer.status_code == 200, answer.text
    refused = submit_upload(tight_stack, offer["id"], key["headers"])
    assert (refused.status_code, error_code(refused)) == (413, "PAYLOAD_TOO_LARGE")
    assert refused.json()["error"]["details"] == {"max_bytes": 10 * MiB,
                                                  "size_bytes": 16 * MiB}
    assert tight_stack.objects(offer["id"]) == []
    again = submit_upload(tight_stack, offer["id"], key["headers"])
    assert (again.status_code, error_code(again)) == (410, "UPLOAD_EXPIRED")


def test_an_expired_upload_is_refused_and_the_sweep_aborts_abandoned_ones(tight_stack,
                                                                         monkeypatch):
    key = tight_stack.key(f"late-{uuid.uuid4().hex[:6]}", "--max-active-jobs", "2")
    data = b"<a>" + b"x" * 100 + b"</a>"
    late = open_upload(tight_stack, key["headers"], len(data)).json()
    put_parts(late, data)
    abandoned = open_upload(tight_stack, key["headers"], 9 * MiB).json()
    put_parts(abandoned, b"<" * (9 * MiB), parts=[1])
    assert tight_stack.objects(abandoned["id"]) != []  # a pending multipart upload
    time.sleep(3.5)  # UPLOAD_URL_TTL_SECONDS=3
    expired = submit_upload(tight_stack, late["id"], key["headers"])
    assert (expired.status_code, error_code(expired)) == (410, "UPLOAD_EXPIRED")
    assert tight_stack.objects(late["id"]) == []
    # The quota slots lapsed with the URLs.
    assert open_upload(tight_stack, key["headers"], len(data)).status_code == 201
    # The sweep (beat's task, run here in this process) aborts the one never completed.
    from common.settings import load_settings
    from jobs import make_celery, open_service

    for name, value in tight_stack.s3.settings().items():  # boto3 reads its key pair here
        monkeypatch.setenv(name, value)
    settings = load_settings(tight_stack.env)
    lifecycle = open_service(settings, make_celery(settings, "sweep-test")).lifecycle
    lifecycle.remove_orphans(grace_seconds=1)
    wait_for(lambda: tight_stack.objects(abandoned["id"]) == [], 10,
             "the abandoned upload was not aborted")


def test_local_storage_answers_501_and_the_client_streams_instead(stack, samples, large):
    answer = requests.post(stack.url("/uploads"), json={"size_bytes": 100}, timeout=10)
    assert (answer.status_code, error_code(answer)) == (501, "DIRECT_UPLOAD_UNAVAILABLE")
    with Client(stack.api_url, direct_min_bytes=1) as api:
        job = api.submit(samples["small"], "json")
        assert api.direct_min_bytes is None  # asked once
    assert job["input"]["sha256"]  # streamed through the API
    assert stack.wait_finished(job["id"])["status"] == "succeeded"
