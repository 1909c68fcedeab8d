"""Idempotency keys, `?wait=N`, and the legacy synchronous routes."""

from __future__ import annotations

import requests

from testkit.jobs_api import accepted_job, error_of, submit_file
from testkit.throttle import stopped_pool


def test_idempotency_key_returns_the_same_job(stack, samples):
    headers = {"Idempotency-Key": "order-batch-42"}
    first = accepted_job(submit_file(stack, samples["small"], headers=headers))
    dirs_after_first = stack.job_dirs()
    again = submit_file(stack, samples["small"], headers=headers)
    assert again.status_code in (200, 202)
    assert again.json()["id"] == first["id"]
    assert stack.job_dirs() == dirs_after_first  # the second upload was not kept

    other = submit_file(stack, samples["malformed"], headers=headers)
    error_of(other, 422, "IDEMPOTENCY_KEY_MISMATCH")
    assert stack.wait_finished(first["id"])["status"] == "succeeded"


def test_wait_answers_with_the_finished_job(stack, samples):
    response = submit_file(stack, samples["small"], params={"wait": "30"},
                           data={"format": "jsonl"})
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["status"] == "succeeded" and job["result"]["size_bytes"] > 0


def test_wait_gives_up_with_202(stack, samples):
    with stopped_pool(stack.worker):  # the job cannot finish within its wait
        response = submit_file(stack, samples["big"], params={"wait": "1"})
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["status"] in ("queued", "running")
        requests.delete(stack.url(f"/jobs/{job['id']}"), timeout=10)
    stack.wait_finished(job["id"])


LEGACY = {"xml-to-json": "json", "xml-to-csv": "csv", "xml-to-string": "text",
          "xml-to-yaml": "yaml"}


def test_legacy_routes_answer_with_the_document(stack, samples, cli_output):
    for route, fmt in LEGACY.items():
        with open(samples["small"], "rb") as handle:
            response = requests.post(stack.url(f"/convert/{route}"), timeout=60,
                                     files={"file": ("orders.xml", handle)})
        assert response.status_code == 200, (route, response.text)
        assert response.content == cli_output(samples["small"], fmt), route
        assert "attachment" not in response.headers.get("Content-Disposition", "")


def test_legacy_route_reports_a_conversion_error(stack, samples):
    with open(samples["malformed"], "rb") as handle:
        response = requests.post(stack.url("/convert/xml-to-json"), data=handle, timeout=60,
                                 headers={"Content-Type": "application/xml"})
    error = error_of(response, 422, "XML_PARSE_ERROR")
    assert error["details"]["line"] == 3 and error["details"]["job_id"]


def test_legacy_route_falls_back_to_a_job_when_slow(stack, samples):
    with stopped_pool(stack.worker):  # the big job holds the worker for as long as the test needs
        job = accepted_job(submit_file(stack, samples["big"], params={"wait": "0"}))
        with open(samples["small"], "rb") as handle:
            slow = requests.post(stack.url("/convert/xml-to-json?wait=1"), timeout=60,
                                 files={"file": ("orders.xml", handle)})
        assert slow.status_code == 202, slow.text  # queued behind the big job
        queued = slow.json()
        assert slow.headers["Location"] == f"/jobs/{queued['id']}"
        requests.delete(stack.url(f"/jobs/{job['id']}"), timeout=10)
    assert stack.wait_finished(queued["id"])["status"] == "succeeded"
