"""Submit → convert → download through the real stack, compared with `xmlconv convert`."""

from __future__ import annotations

import gzip
import hashlib

import pytest
import requests

from converter import FORMATS
from testkit.jobs_api import accepted_job, download, submit_file, submit_raw

ALL_FORMATS = list(FORMATS)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_multipart_upload_converts_like_the_cli(stack, samples, cli_output, fmt):
    source = samples["small"]
    job = accepted_job(submit_file(stack, source, data={"format": fmt}))
    assert job["format"] == fmt
    assert job["input"] == {"filename": "orders.xml", "size_bytes": source.stat().st_size,
                            "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}

    finished = stack.wait_finished(job["id"])
    assert finished["status"] == "succeeded", finished
    assert finished["progress"]["percent"] == 100.0
    assert finished["started_at"] and finished["finished_at"] and finished["error"] is None

    result = download(stack, job["id"])
    assert result.content == cli_output(source, fmt)
    assert result.headers["Content-Type"] == FORMATS[fmt].content_type
    disposition = result.headers["Content-Disposition"]
    assert disposition.startswith("attachment") and f"orders.{FORMATS[fmt].extension}" in (
        disposition)
    assert finished["result"]["size_bytes"] == len(result.content)
    assert finished["result"]["content_type"] == FORMATS[fmt].content_type
    assert finished["result"]["expires_at"]
    # DELETE_INPUT_ON_FINISH is on by default: only the result stays on disk.
    assert not (stack.data_dir / "jobs" / job["id"] / "input.xml").exists()


def test_raw_body_with_options_in_the_query(stack, samples, cli_output):
    response = submit_raw(stack, samples["small"], params={
        "format": "jsonl", "namespaces": "strip", "filename": "orders.xml"})
    job = accepted_job(response)
    assert job["options"] == {"namespaces": "strip"}
    assert stack.wait_finished(job["id"])["status"] == "succeeded"
    expected = cli_output(samples["small"], "jsonl", "--namespaces", "strip")
    assert download(stack, job["id"]).content == expected


def test_raw_text_xml_body_defaults_to_json(stack, samples, cli_output):
    with open(samples["small"], "rb") as handle:
        response = requests.post(stack.url("/jobs"), data=handle, timeout=60,
                                 headers={"Content-Type": "text/xml; charset=utf-8"})
    job = accepted_job(response)
    assert job["format"] == "json" and job["input"]["filename"] == "upload.xml"
    assert stack.wait_finished(job["id"])["status"] == "succeeded"
    result = download(stack, job["id"])
    assert result.content == cli_output(samples["small"], "json")
    assert "upload.json" in result.headers["Content-Disposition"]


def test_gzip_file_part_is_decompressed(stack, samples, cli_output):
    job = accepted_job(submit_file(stack, samples["gz"], data={"format": "yaml"}))
    assert job["input"]["filename"] == "orders.xml"
    assert job["input"]["size_bytes"] == samples["small"].stat().st_size  # decompressed size
    assert stack.wait_finished(job["id"])["status"] == "succeeded"
    assert download(stack, job["id"]).content == cli_output(samples["small"], "yaml")


def test_gzip_content_encoding_on_a_raw_body(stack, samples, cli_output):
    body = gzip.compress(samples["small"].read_bytes())
    response = requests.post(stack.url("/jobs?format=csv"), data=body, timeout=60, headers={
        "Content-Type": "application/xml", "Content-Encoding": "gzip"})
    job = accepted_job(response)
    assert job["input"]["sha256"] == hashlib.sha256(samples["small"].read_bytes()).hexdigest()
    assert stack.wait_finished(job["id"])["status"] == "succeeded"
    assert download(stack, job["id"]).content == cli_output(samples["small"], "csv")


def test_gz_filename_on_a_raw_body(stack, samples, cli_output):
    response = submit_raw(stack, samples["gz"], params={"filename": "orders.xml.gz",
                                                        "format": "text"})
    job = accepted_job(response)
    assert stack.wait_finished(job["id"])["status"] == "succeeded"
    assert download(stack, job["id"]).content == cli_output(samples["small"], "text")


def test_fields_after_the_file_part_still_count(stack, samples):
    # curl sends parts in command-line order: options may follow the file.
    with open(samples["small"], "rb") as handle:
        response = requests.post(stack.url("/jobs"), timeout=60, files=[
            ("file", ("orders.xml", handle)), ("format", (None, "jsonl")),
            ("types", (None, "infer"))])
    job = accepted_job(response)
    assert job["format"] == "jsonl" and job["options"] == {"types": "infer"}
    assert stack.wait_finished(job["id"])["status"] == "succeeded"
