"""Liveness, readiness through a Redis outage, Flower, and the JSON log lines of every process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import requests

from testkit.jobs_api import accepted_job, error_of, submit_file
from testkit.waiting import wait_for

REQUIRED_FIELDS = {"timestamp", "level", "logger", "message", "service"}


def test_liveness(stack):
    response = requests.get(stack.url("/health"), timeout=10)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readiness_reports_checks_and_workers(stack):
    body = wait_for(lambda: (r := requests.get(stack.url("/health/ready"), timeout=10)).ok
                    and r.json()["workers"] and r.json(), 30, "no live worker reported")
    assert body["checks"] == {"redis": {"ok": True}, "storage": {"ok": True}}
    assert any(w["hostname"].startswith("worker-") for w in body["workers"])


def test_worker_health_command(stack):
    hostname = next(w["hostname"] for w in requests.get(
        stack.url("/health/ready"), timeout=10).json()["workers"])
    ok = subprocess.run([sys.executable, "-m", "worker.health", "--hostname", hostname],
                        env=stack.env, capture_output=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    missing = subprocess.run([sys.executable, "-m", "worker.health", "--hostname",
                              "nobody@nowhere", "--timeout", "1"],
                             env=stack.env, capture_output=True, timeout=60)
    assert missing.returncode == 1


def test_redis_outage_makes_the_api_unready_and_refuse_jobs(stack, samples):
    stack.redis.stop()
    try:
        response = requests.get(stack.url("/health/ready"), timeout=30)
        details = error_of(response, 503, "NOT_READY")["details"]
        assert details["checks"]["redis"]["ok"] is False
        assert details["checks"]["storage"]["ok"] is True

        before = stack.job_dirs()
        refused = submit_file(stack, samples["small"])
        error_of(refused, 503, "QUEUE_UNAVAILABLE")
        assert int(refused.headers["Retry-After"]) > 0
        assert stack.job_dirs() == before
    finally:
        stack.redis.start()

    wait_for(lambda: requests.get(stack.url("/health/ready"), timeout=10).status_code == 200,
             30, "the API did not become ready again")
    # The worker reconnects by itself and takes new jobs.
    job = accepted_job(submit_file(stack, samples["small"]))
    assert stack.wait_finished(job["id"], timeout=120)["status"] == "succeeded"


def test_flower_answers_with_auth(stack):
    assert requests.get(stack.flower_url + "/healthcheck", timeout=10).text == "OK"
    assert requests.get(stack.flower_url + "/", timeout=10).status_code == 401
    assert requests.get(stack.flower_url + "/", auth=("admin", "secret"),
                        timeout=10).status_code == 200


def test_every_line_is_json_and_a_request_id_follows_its_job(stack, samples):
    request_id = "trace-me-0001"
    job = accepted_job(submit_file(stack, samples["small"],
                                   headers={"X-Request-ID": request_id}))
    assert stack.wait_finished(job["id"])["status"] == "succeeded"

    def lines_with(process, needle):
        return [json.loads(line) for line in process.lines() if needle in line]

    wait_for(lambda: lines_with(stack.worker, request_id), 10, "worker lines lack the id")
    for process in stack.processes():
        lines = process.lines()
        assert lines, f"{process.name} printed nothing"
        for line in lines:
            record = json.loads(line)  # fails the test on any non-JSON line
            assert set(record) >= REQUIRED_FIELDS, (process.name, record)
            assert record["timestamp"].endswith("Z")
            assert record["service"] in ("api", "worker", "flower")

    api_lines = lines_with(stack.api, request_id)
    worker_lines = lines_with(stack.worker, request_id)
    assert any(r["logger"] == "gunicorn.access" and r["path"] == "/jobs" for r in api_lines)
    assert any(r.get("job_id") == job["id"] and r["request_id"] == request_id
               for r in api_lines)
    assert any(r.get("job_id") == job["id"] and r["request_id"] == request_id
               for r in worker_lines)


def test_access_log_counts_the_bytes_of_a_download(stack, samples):
    """One access line per request with method, path, status, duration and bytes; result
    downloads go out through sendfile, and still count."""
    job = accepted_job(submit_file(stack, samples["small"]))
    assert stack.wait_finished(job["id"])["status"] == "succeeded"
    request_id = "download-bytes-0001"
    body = requests.get(stack.url(f"/jobs/{job['id']}/result"),
                        headers={"X-Request-ID": request_id}, timeout=30).content

    def access_line():
        return next((json.loads(line) for line in stack.api.lines()
                     if request_id in line and "gunicorn.access" in line), None)

    wait_for(access_line, 10, "no access line for the download")
    line = access_line()
    assert (line["method"], line["path"], line["status"]) == (
        "GET", f"/jobs/{job['id']}/result", 200)
    assert line["bytes"] == len(body) > 0
    assert line["duration_ms"] >= 0



def test_the_logs_name_paths_and_parameters_never_their_values(keyed_stack):
    """A webhook URL may carry a token and `metadata` a client's data: the access log writes the
    path and the query parameters' names, and no line of the API's log holds their values,
    whether the job was accepted, refused, or its request line was malformed."""
    key = keyed_stack.key("logs-say-nothing")
    token, secret = "tok-4a1f9c2e7b", "meta-5d83b0e6aa"
    hook = f"http://127.0.0.1:9/hooks?token={token}"
    data = b"<orders><order>1</order></orders>"
    headers = {**key["headers"], "Content-Type": "application/xml",
               "X-Request-ID": "quiet-logs-0001"}
    accepted = requests.post(keyed_stack.url("/jobs"), data=data, headers=headers, timeout=30,
                             params={"format": "json", "webhook_url": hook,
                                     "metadata": json.dumps({"note": secret})})
    accepted_job(accepted)
    refused = requests.post(keyed_stack.url("/jobs"), data=data, headers=headers, timeout=30,
                            params={"webhook_url": hook, "metadata": f'{{"note": "{secret}"'})
    error_of(refused, 400, "INVALID_REQUEST")
    # A request line gunicorn cannot parse (a space in its target) is logged by gunicorn.
    with socket.create_connection(("127.0.0.1", keyed_stack.api_port), timeout=10) as sock:
        sock.sendall(f"GET /jobs?webhook_url={token} {secret} HTTP/1.1\r\n"
                     "Host: x\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 400")

    def access_lines():
        return [record for line in keyed_stack.api.lines() if "quiet-logs-0001" in line
                and (record := json.loads(line))["logger"] == "gunicorn.access"]

    wait_for(lambda: len(access_lines()) == 2, 10, "no access lines for the two submissions")
    first, second = access_lines()
    assert first["message"] == "POST /jobs 202" and first["path"] == "/jobs"
    assert first["query_parameters"] == ["format", "webhook_url", "metadata"]
    assert second["message"] == "POST /jobs 400"
    wait_for(lambda: any("Invalid request" in line for line in keyed_stack.api.lines()), 10,
             "gunicorn did not log the malformed request line")
    leaks = [line for line in keyed_stack.api.lines() if token in line or secret in line]
    assert leaks == []


OPERATOR_TOKEN = "operator-token-0123456789abcdef0123456789"


def test_readiness_details_are_for_the_metrics_token_holder_only(stack):
    """An API with METRICS_TOKEN set (as staging and production run, and compose with a
    token): anyone reads readiness's status code and `status`, only the token's holder the
    checks and the workers' host names and process ids. The codes probes read do not change."""
    with stack.another_api("api-guarded", METRICS_TOKEN=OPERATOR_TOKEN) as url:
        operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        for headers in ({}, {"Authorization": "Bearer not-the-token"},
                        {"Authorization": OPERATOR_TOKEN}):
            anyone = requests.get(url + "/health/ready", headers=headers, timeout=10)
            assert anyone.status_code == 200 and anyone.json() == {"status": "ready"}
        shown = wait_for(lambda: (r := requests.get(url + "/health/ready", headers=operator,
                                                    timeout=10)).json().get("workers")
                         and r.json(), 30, "no live worker shown to the operator")
        assert shown["checks"] == {"redis": {"ok": True}, "storage": {"ok": True}}
        assert all({"hostname", "pid"} <= set(w) for w in shown["workers"]), shown
        assert subprocess.run([sys.executable, "-m", "api.health"], capture_output=True,
                              timeout=60, env={**stack.env, "METRICS_TOKEN": OPERATOR_TOKEN,
                                               "API_BIND": url.removeprefix("http://")},
                              ).returncode == 0

        stack.redis.stop()
        try:
            anyone = requests.get(url + "/health/ready", timeout=30)
            error = error_of(anyone, 503, "NOT_READY")
            assert error["details"] == {} and "redis" not in error["message"]
            assert int(anyone.headers["Retry-After"]) > 0
            told = error_of(requests.get(url + "/health/ready", headers=operator, timeout=30),
                            503, "NOT_READY")
            assert told["details"]["checks"]["redis"]["ok"] is False
        finally:
            stack.redis.start()
        wait_for(lambda: requests.get(url + "/health/ready", timeout=10).status_code == 200,
                 30, "the guarded API did not become ready again")
