"""What the service refuses, and how: conversion failures recorded on the job, and HTTP errors
always in the `{"error": {"code", "message", "details"}}` envelope."""

from __future__ import annotations

import uuid

import pytest
import requests

from testkit.jobs_api import accepted_job, error_of, submit_file


def test_malformed_xml_fails_the_job_with_its_position(stack, samples):
    job = accepted_job(submit_file(stack, samples["malformed"]))
    finished = stack.wait_finished(job["id"])
    assert finished["status"] == "failed"
    error = finished["error"]
    assert error["code"] == "XML_PARSE_ERROR"
    assert set(error) == {"code", "message", "details"}
    assert error["details"]["line"] == 3 and isinstance(error["details"]["column"], int)
    assert finished["result"] is None

    details = error_of(requests.get(stack.url(f"/jobs/{job['id']}/result"), timeout=10),
                       409, "RESULT_UNAVAILABLE")["details"]
    assert details["status"] == "failed" and details["error"]["code"] == "XML_PARSE_ERROR"


def test_entity_expansion_attack_is_refused_and_the_worker_carries_on(stack, samples):
    job = accepted_job(submit_file(stack, samples["laughs"]))
    finished = stack.wait_finished(job["id"])
    assert finished["status"] == "failed"
    assert finished["error"]["code"] == "XML_SECURITY_VIOLATION"
    assert stack.worker.alive()

    following = accepted_job(submit_file(stack, samples["small"]))
    assert stack.wait_finished(following["id"])["status"] == "succeeded"


@pytest.mark.parametrize(("content_type", "encoding"), [
    ("application/json", None), ("text/plain", None), (None, None),
    ("application/xml", "br"),
])
def test_unsupported_media_types(stack, content_type, encoding):
    headers = {}
    if content_type:
        headers["Content-Type"] = content_type
    if encoding:
        headers["Content-Encoding"] = encoding
    before = stack.job_dirs()
    response = requests.post(stack.url("/jobs"), data=b"<a/>", headers=headers, timeout=10)
    error_of(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert stack.job_dirs() == before


BAD_OPTIONS = {
    "format": "pdf",
    "namespaces": "sometimes",
    "attr_prefix": "x" * 65,
    "text_key": "",
    "force_list": ",".join(f"e{i}" for i in range(300)),
    "strip_whitespace": "perhaps",
    "types": "guess",
    "indent": "99",
    "record_path": "a//b",
    "separator": "",
    "include_attributes": "maybe",
    "max_depth": "0",
    "no_such_option": "1",
}


@pytest.mark.parametrize("option", sorted(BAD_OPTIONS))
def test_each_bad_option_is_named_in_a_400_in_the_query(stack, option):
    before = stack.job_dirs()
    response = requests.post(stack.url("/jobs"), params={option: BAD_OPTIONS[option]},
                             data=b"<a>1</a>", headers={"Content-Type": "application/xml"},
                             timeout=10)
    error = error_of(response, 400, "INVALID_OPTION")
    assert error["details"]["option"] == option
    assert stack.job_dirs() == before


@pytest.mark.parametrize("option", ["format", "namespaces", "indent", "no_such_option"])
def test_bad_option_as_a_form_field_leaves_nothing_behind(stack, samples, option):
    before = stack.job_dirs()
    error = error_of(submit_file(stack, samples["small"], data={option: BAD_OPTIONS[option]}),
                     400, "INVALID_OPTION")
    assert error["details"]["option"] == option
    assert stack.job_dirs() == before


def test_form_without_a_file_part(stack):
    response = requests.post(stack.url("/jobs"), files={"other": ("x.xml", b"<a/>")},
                             data={"format": "json"}, timeout=10)
    error_of(response, 400, "MISSING_FILE")


def test_bad_wait(stack, samples):
    error_of(submit_file(stack, samples["small"], params={"wait": "61"}), 400, "INVALID_REQUEST")


def test_unknown_and_malformed_job_ids(stack):
    for job_id in (str(uuid.uuid4()), "not-a-uuid", "../../etc/passwd"):
        for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/result"):
            response = requests.get(stack.url(path), timeout=10)
            assert response.status_code == 404, (path, response.text)
            assert response.json()["error"]["code"] in ("JOB_NOT_FOUND", "NOT_FOUND")
        assert requests.delete(stack.url(f"/jobs/{job_id}"), timeout=10).status_code == 404


def test_deleted_job_answers_410(stack, samples):
    job = accepted_job(submit_file(stack, samples["small"]))
    assert stack.wait_finished(job["id"])["status"] == "succeeded"
    assert requests.delete(stack.url(f"/jobs/{job['id']}"), timeout=10).status_code == 204
    assert job["id"] not in stack.job_dirs()
    error_of(requests.get(stack.url(f"/jobs/{job['id']}"), timeout=10), 410, "JOB_EXPIRED")
    error_of(requests.get(stack.url(f"/jobs/{job['id']}/result"), timeout=10), 410,
             "JOB_EXPIRED")


def test_flask_own_errors_use_the_envelope(stack):
    error_of(requests.get(stack.url("/no/such/route"), timeout=10), 404, "NOT_FOUND")
    response = requests.put(stack.url("/jobs"), timeout=10)
    error_of(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in response.headers["Allow"]


def test_request_id_is_echoed_or_made(stack):
    response = requests.get(stack.url("/health"), headers={"X-Request-ID": "abc-123"},
                            timeout=10)
    assert response.headers["X-Request-ID"] == "abc-123"
    made = requests.get(stack.url("/health"), headers={"X-Request-ID": "bad id; with spaces"},
                        timeout=10).headers["X-Request-ID"]
    assert made and made != "bad id; with spaces"
