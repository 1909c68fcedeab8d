"""GET /metrics on the real stack: the API under gunicorn with two processes recycled every 20
requests, API keys on and a METRICS_TOKEN, its own Redis database, and a real Celery worker
started once jobs are waiting. What an operator would notice: jobs by format, status and error
code, upload bytes, requests by route, queue depth, live workers; promtool accepts the output."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from testkit.stack import Stack
from testkit.waiting import wait_for

TOKEN = secrets.token_hex(24)
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}
Samples = dict[tuple[str, tuple], float]


def metered_stack(redis_server, root: Path, **env: str) -> Stack:
    """The API alone (workers come later), API keys on, scraped with TOKEN."""
    return Stack(root, redis=redis_server, workers=0, keys=True, name="metered",
                 env={"METRICS_TOKEN": TOKEN, **env})


def scrape(stack: Stack) -> tuple[str, Samples]:
    response = requests.get(stack.url("/metrics"), headers=SCRAPE, timeout=30)
    assert response.status_code == 200, response.text
    text = response.text
    return text, {(s.name, tuple(sorted(s.labels.items()))): s.value
                  for family in text_string_to_metric_families(text)
                  for s in family.samples}


def metrics_dirs(stack: Stack) -> set[str]:
    """Where the API's processes keep their figures (from their memory maps)."""
    return {os.path.dirname(m.path) for child in psutil.Process(stack.api.pid).children()
            for m in child.memory_maps() if "xmlconv-metrics-" in m.path}


@pytest.fixture(scope="module")
def metered(redis_server, tmp_path_factory):
    with metered_stack(redis_server, tmp_path_factory.mktemp("metered"), API_WORKERS="2",
                       API_MAX_REQUESTS="20", API_MAX_REQUESTS_JITTER="0") as stack:
        yield stack


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0)


def test_jobs_uploads_queue_and_workers_as_an_operator_sees_them(metered, samples):
    key = metered.key(f"metrics-{time.monotonic_ns()}")
    headers = {"Authorization": f"Bearer {key['api_key']}", "Content-Type": "application/xml"}
    _, before = scrape(metered)
    assert value(before, "xmlconv_workers") == 0  # none started yet
    ids = []
    for path, fmt in ((samples["small"], "csv"), (samples["malformed"], "json")):
        answer = requests.post(metered.api_url + f"/jobs?format={fmt}", data=path.read_bytes(),
                               headers=headers, timeout=60)
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])
    _, waiting = scrape(metered)
    assert value(waiting, "xmlconv_queue_messages", queue="xmlconv") == 2
    assert value(waiting, "xmlconv_jobs_unfinished", status="queued") == 2

    metered.add_worker()
    polls = 0

    def finished(job_id: str) -> bool:
        nonlocal polls
        polls += 1
        return metered.get_job(job_id, headers)["status"] in ("succeeded", "failed")

    for job_id in ids:
        wait_for(lambda job_id=job_id: finished(job_id), 60, f"job {job_id} did not finish",
                 interval=0.1)
    wait_for(lambda: value(scrape(metered)[1], "xmlconv_workers") == 1, 30,
             "the worker's heartbeat is not counted")
    text, after = scrape(metered)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("xmlconv_jobs_submitted_total", format="csv") == 1
    assert delta("xmlconv_jobs_submitted_total", format="json") == 1
    assert delta("xmlconv_jobs_finished_total", format="csv", status="succeeded",
                 error_code="") == 1
    assert delta("xmlconv_jobs_finished_total", format="json", status="failed",
                 error_code="XML_PARSE_ERROR") == 1
    small = samples["small"].stat().st_size
    assert delta("xmlconv_conversion_input_bytes_sum", format="csv") == small
    assert delta("xmlconv_conversion_duration_seconds_count", format="csv") == 1
    assert delta("xmlconv_http_request_body_bytes_sum", route="/jobs") == (
        small + samples["malformed"].stat().st_size)
    assert delta("xmlconv_http_request_duration_seconds_count", route="/jobs", method="POST",
                 status="202") == 2
    # Every poll, whichever process answered it and however often they were recycled.
    assert delta("xmlconv_http_request_duration_seconds_count", route="/jobs/<job_id>",
                 method="GET", status="200") == polls
    assert value(after, "xmlconv_queue_messages", queue="xmlconv") == 0
    assert value(after, "xmlconv_jobs_unfinished", status="queued") == 0
    assert value(after, "xmlconv_worker_processes") == 1  # WORKER_CONCURRENCY of the tests
    assert value(after, "xmlconv_job_store_up") == 1
    for secret in (*ids, key["api_key"], key["id"], key["name"]):  # aggregates only
        assert secret not in text
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                             capture_output=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_processes_recycled_every_20_requests_lose_no_count_and_leave_no_files(metered):
    def boots() -> int:
        return sum("Booting worker" in line for line in metered.api.lines())

    def health() -> None:
        assert requests.get(metered.api_url + "/health", timeout=30).status_code == 200

    _, before = scrape(metered)
    first, sent, deadline = boots(), 0, time.monotonic() + 60
    # A process past its 20 requests still answers for up to a second before it goes: keep
    # asking until two successors have booted, then some more for them to answer.
    while boots() < first + 2:
        assert time.monotonic() < deadline, "no process was recycled"
        health()
        sent += 1
    for _ in range(20):
        health()
    _, after = scrape(metered)
    counted = (value(after, "xmlconv_http_request_duration_seconds_count", route="/health",
                     method="GET", status="200")
               - value(before, "xmlconv_http_request_duration_seconds_count", route="/health",
                       method="GET", status="200"))
    assert counted == sent + 20
    [directory] = metrics_dirs(metered)
    assert sorted(os.listdir(directory)) == ["histogram_0.db", "histogram_1.db", "owner.lock"]


def test_the_scrape_needs_the_metrics_token_not_an_api_key(metered):
    key = metered.key(f"not-metrics-{time.monotonic_ns()}")
    for headers in ({}, {"Authorization": f"Bearer {key['api_key']}"}):
        refused = requests.get(metered.api_url + "/metrics", headers=headers, timeout=10)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "UNAUTHENTICATED"
        assert "xmlconv_" not in refused.text


def test_the_figures_directory_lives_as_long_as_the_api(redis_server, tmp_path):
    def started(name: str) -> tuple[Stack, str]:
        stack = metered_stack(redis_server, tmp_path / name, API_WORKERS="1")
        stack.start()
        requests.get(stack.url("/health"), timeout=10)
        [directory] = wait_for(lambda: metrics_dirs(stack), 10, "no figures file is mapped")
        assert Path(directory, "owner.lock").is_file()
        return stack, directory

    killed, left = started("killed")
    try:
        processes = [psutil.Process(killed.api.pid), *psutil.Process(killed.api.pid).children()]
        os.kill(killed.api.pid, signal.SIGKILL)  # no on_exit: its directory stays behind
        psutil.wait_procs(processes, timeout=30)
    finally:
        killed.stop()
    assert Path(left).is_dir()
    stack, directory = started("next")
    try:
        assert not Path(left).exists()  # the next start removed it: nobody held its lock
    finally:
        stack.stop()
    assert not Path(directory).exists()  # a clean stop removes its own
