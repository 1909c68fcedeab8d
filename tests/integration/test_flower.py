"""Flower read back over HTTP against the real stack (redis-server, a Celery worker, Flower with
FLOWER_BASIC_AUTH=admin:secret): the worker's page and stats answer, the heartbeat bootstep's
info shows in them, and `/metrics` asks for the same credentials as every other page, while
`/healthcheck` stays open for container health checks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests

from testkit import BIN, REPO
from testkit.waiting import wait_for

AUTH = ("admin", "secret")


@pytest.fixture(scope="module")
def nodename(stack) -> str:
    """The worker's Celery node name, from its heartbeat (as /health/ready reports it)."""
    return wait_for(lambda: next((w["hostname"] for w in requests.get(
        stack.url("/health/ready"), timeout=10).json()["workers"]), None), 30,
        "no live worker reported")


def flower_get(stack, path: str, auth=AUTH, **params) -> requests.Response:
    return requests.get(stack.flower_url + path, auth=auth, params=params, timeout=30,
                        allow_redirects=False)


def test_the_worker_page_answers(stack, nodename):
    response = wait_for(lambda: (r := flower_get(stack, f"/worker/{nodename}")).status_code
                        == 200 and r, 60, "Flower's worker page never answered 200")
    assert nodename in response.text
    assert "Traceback" not in response.text


def test_the_worker_page_asks_for_credentials(stack, nodename):
    assert flower_get(stack, f"/worker/{nodename}", auth=None).status_code == 401


def test_the_workers_api_reports_the_worker_with_its_stats(stack, nodename):
    def stats():
        response = flower_get(stack, "/api/workers", refresh=1)
        assert response.status_code == 200, response.text
        return response.json().get(nodename, {}).get("stats")

    found = wait_for(stats, 60, f"Flower's /api/workers never reported {nodename}'s stats")
    assert "broker" in found and "pool" in found  # Celery's own stats, not an error
    heartbeat = found["heartbeat"]
    assert heartbeat["period_seconds"] == int(stack.env["WORKER_HEARTBEAT_SECONDS"])
    assert heartbeat["concurrency"] == int(stack.env["WORKER_CONCURRENCY"])
    assert heartbeat["last_written"].endswith("Z")


def test_celery_inspect_stats_reports_the_worker(stack, nodename):
    done = subprocess.run([str(BIN / "celery"), "-A", "worker.app", "inspect", "stats",
                           "--json", "-d", nodename, "--timeout", "10"],
                          cwd=REPO, env=stack.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    replies = json.loads(done.stdout.strip().splitlines()[-1])
    stats = replies[nodename]
    assert "broker" in stats and "error" not in stats
    assert stats["heartbeat"]["pid"] > 0


def test_metrics_ask_for_credentials(stack):
    refused = flower_get(stack, "/metrics", auth=None)
    assert refused.status_code == 401
    assert "Basic" in refused.headers["WWW-Authenticate"]
    assert flower_get(stack, "/metrics", auth=("admin", "wrong")).status_code == 401

    allowed = flower_get(stack, "/metrics")
    assert allowed.status_code == 200
    assert "flower_" in allowed.text  # Prometheus text format, Flower's own metrics


def test_healthcheck_needs_no_credentials(stack):
    response = flower_get(stack, "/healthcheck", auth=None)
    assert response.status_code == 200 and response.text == "OK"


def test_every_other_route_keeps_flowers_own_handler():
    """The launcher swaps only /metrics' handler, in place; every other route is Flower's."""
    code = ("from flower import urls\n"
            "before = list(urls.handlers)\n"
            "from worker.flower import guard_metrics\n"
            "guard_metrics()\n"
            "changed = [a[0] for a, b in zip(before, urls.handlers) if a != b]\n"
            "assert len(before) == len(urls.handlers) and changed == ['/metrics'], changed\n"
            "import flower.app\n"
            "assert flower.app.default_handlers is urls.handlers  # what Flower builds from\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


def test_a_failed_job_is_a_failed_task_in_flower(stack, samples):
    from testkit.jobs_api import accepted_job, submit_file

    good = accepted_job(submit_file(stack, samples["small"]))
    bad = accepted_job(submit_file(stack, samples["malformed"]))
    assert stack.wait_finished(bad["id"])["error"]["code"] == "XML_PARSE_ERROR"
    assert stack.wait_finished(good["id"])["status"] == "succeeded"

    def state(task_id: str) -> dict | None:
        response = flower_get(stack, f"/api/task/info/{task_id}")
        info = response.json() if response.status_code == 200 else {}
        return info if info.get("state") in ("SUCCESS", "FAILURE") else None

    failed = wait_for(lambda: state(bad["id"]), 60, "Flower never saw the failed task")
    assert failed["state"] == "FAILURE"
    assert "XML_PARSE_ERROR" in failed["exception"]
    assert "mismatched tag" in failed["exception"] or "XML" in failed["exception"]
    assert not failed.get("retries")  # Celery does not retry it
    assert wait_for(lambda: state(good["id"]), 60, "no success seen")["state"] == "SUCCESS"
