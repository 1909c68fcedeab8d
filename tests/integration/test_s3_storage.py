"""STORAGE_URL=s3://…: the API and the worker share no directory at all — each runs in its own
working directory with its own empty DATA_DIR — and jobs still convert like `xmlconv convert`,
through a real S3 server (SeaweedFS); cancelling or deleting a job removes its objects."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from converter import FORMATS
from testkit.jobs_api import accepted_job, download, submit_file
from testkit.s3_server import S3Server
from testkit.stack import Stack
from testkit.throttle import Throttle
from testkit.waiting import wait_for


def s3_stack_at(redis_server, s3_server: S3Server, root: Path, **env: str) -> Stack:
    """STORAGE_URL=s3://…: the API and one worker, each in its own working directory with its
    own empty DATA_DIR, sharing nothing but a Redis database and the bucket."""
    return Stack(root, redis=redis_server, s3=s3_server, name="s3", env=env)


@pytest.fixture(scope="module")
def medium(tmp_path_factory) -> Path:
    """An input of several S3 parts (8 MiB each)."""
    from bench.generate import generate

    path = tmp_path_factory.mktemp("s3samples") / "medium.xml"
    generate(24, path)
    return path


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_job_converts_like_the_cli_with_no_shared_directory(s3_stack, samples, cli_output,
                                                             fmt):
    source = samples["small"]
    job = accepted_job(submit_file(s3_stack, source, data={"format": fmt}))
    finished = s3_stack.wait_finished(job["id"])
    assert finished["status"] == "succeeded", finished
    result = download(s3_stack, job["id"])
    assert result.content == cli_output(source, fmt)
    assert result.headers["Content-Type"] == FORMATS[fmt].content_type
    assert finished["result"]["size_bytes"] == len(result.content)
    # DELETE_INPUT_ON_FINISH: only the result is left, in the bucket; nothing on either disk.
    assert s3_stack.objects(job["id"]) == [f"result.{FORMATS[fmt].extension}"]
    assert s3_stack.local_files() == []


def test_a_multipart_sized_job_converts_like_the_cli(s3_stack, medium, cli_output):
    job = accepted_job(submit_file(s3_stack, medium, data={"format": "jsonl"}))
    finished = s3_stack.wait_finished(job["id"], timeout=180)
    assert finished["status"] == "succeeded", finished
    assert finished["progress"]["percent"] == 100.0
    assert download(s3_stack, job["id"]).content == cli_output(medium, "jsonl")
    assert s3_stack.local_files() == []


def test_readiness_checks_the_bucket(s3_stack):
    response = requests.get(s3_stack.url("/health/ready"), timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["storage"] == {"ok": True}


def test_deleting_a_finished_job_removes_its_objects(s3_stack, samples):
    job = accepted_job(submit_file(s3_stack, samples["small"]))
    assert s3_stack.wait_finished(job["id"])["status"] == "succeeded"
    assert s3_stack.objects(job["id"]) == ["result.json"]
    response = requests.delete(s3_stack.url(f"/jobs/{job['id']}"), timeout=10)
    assert response.status_code == 204, response.text
    assert s3_stack.objects(job["id"]) == []


def test_cancelling_queued_and_running_jobs_removes_their_objects(s3_stack, medium):
    with Throttle(s3_stack.worker):  # the first job runs for seconds
        running = accepted_job(submit_file(s3_stack, medium, data={"format": "json"}))
        queued = accepted_job(submit_file(s3_stack, medium, data={"format": "json"}))
        wait_for(lambda: s3_stack.get_job(running["id"])["status"] == "running", 60,
                 "the first job did not start")
        assert s3_stack.get_job(queued["id"])["status"] == "queued"  # one worker process
        assert s3_stack.objects(queued["id"]) == ["input.xml"]
        for job in (queued, running):
            response = requests.delete(s3_stack.url(f"/jobs/{job['id']}"), timeout=10)
            assert response.status_code in (202, 204), response.text
    assert s3_stack.objects(queued["id"]) == []
    assert s3_stack.wait_finished(running["id"])["status"] == "cancelled"
    wait_for(lambda: s3_stack.objects(running["id"]) == [], 30,
             "the cancelled run left objects behind")
    assert s3_stack.local_files() == []


def test_redirect_delivery_answers_303_to_a_presigned_url(redis_server, s3_server, samples,
                                                          cli_output, tmp_path):
    with s3_stack_at(redis_server, s3_server, tmp_path, RESULT_DELIVERY="redirect",
                     RESULT_URL_TTL_SECONDS="60") as stack:
        job = accepted_job(submit_file(stack, samples["small"], data={"format": "csv"}))
        assert stack.wait_finished(job["id"])["status"] == "succeeded"
        answer = requests.get(stack.url(f"/jobs/{job['id']}/result"), timeout=10,
                              allow_redirects=False)
        assert answer.status_code == 303, answer.text
        location = answer.headers["Location"]
        assert location.startswith(s3_server.endpoint) and "X-Amz-Expires=60" in location
        result = requests.get(location, timeout=30)  # no credentials: the URL is signed
        assert result.status_code == 200, result.text
        assert result.content == cli_output(samples["small"], "csv")
        assert result.headers["Content-Type"] == FORMATS["csv"].content_type
        assert result.headers["Content-Disposition"].startswith('attachment; filename="orders')
        followed = requests.get(stack.url(f"/jobs/{job['id']}/result"), timeout=30)
        assert followed.content == result.content
        requests.delete(stack.url(f"/jobs/{job['id']}"), timeout=10)
        gone = requests.get(stack.url(f"/jobs/{job['id']}/result"), timeout=10,
                            allow_redirects=False)
        assert gone.status_code in (404, 410), gone.text
