"""`make run`'s supervisor (scripts/run_stack.py) as a newcomer uses it: started in an empty
folder on free ports (its own redis-server, since REDIS_URL does not answer), it says what is
open, runs a job end to end, and on Ctrl-C (SIGINT to its process group) or SIGTERM stops the
API, Flower, beat, the webhooks worker, the worker and then Redis, exits 0, writes only JSON
lines, and leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import psutil
import pytest
import requests

from testkit import BIN, REPO
from testkit.commands import service_env
from testkit.waiting import free_port, wait_for

ORDERS = b'<orders><order id="1"><item>tea</item></order><order id="2"/></orders>'
STOP_ORDER = ["api", "flower", "beat", "webhooks", "worker", "redis"]


def records(path: Path) -> list[dict]:
    """Every line of an output file, each of which must be one JSON object."""
    text = path.read_text(encoding="utf-8")
    lines = text.rstrip("\n").split("\n") if text else []
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"{path.name}: a line that is not JSON: {line!r}")
    return parsed


def own(lines: list[dict]) -> list[str]:
    return [line["message"] for line in lines if line.get("service") == "make-run"]


def shutdown(lines: list[dict]) -> list[str]:
    """What every process said from the signal on: a failed test shows why one exited so."""
    first = next((i for i, line in enumerate(lines) if line.get("service") == "make-run"
                  and str(line.get("message", "")).endswith(": stopping")), len(lines))
    return [f"{line.get('service')} {line.get('level')}: {line.get('message')} "
            f"{line.get('exc_info', '')}"
            for line in lines[first:]]


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "term"])
def test_make_run_starts_runs_a_job_and_stops_in_order(tmp_path: Path, stop_signal: int):
    api_port, flower_port, redis_port = free_port(), free_port(), free_port()
    env = service_env(f"redis://127.0.0.1:{redis_port}/0", tmp_path / "var" / "data",
                      API_BIND=f"127.0.0.1:{api_port}", FLOWER_PORT=str(flower_port))
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        supervisor = subprocess.Popen([str(BIN / "python"), str(REPO / "scripts" / "run_stack.py")],
                                      cwd=tmp_path, env=env, stdout=stdout, stderr=stderr,
                                      start_new_session=True)
    started: list[psutil.Process] = []
    try:
        api = f"http://127.0.0.1:{api_port}"
        wait_for(lambda: requests.get(api + "/health/ready", timeout=2).status_code == 200
                 or supervisor.poll() is not None, 60, "the stack never became ready")
        assert supervisor.poll() is None, out.read_text()[-3000:]
        started = psutil.Process(supervisor.pid).children(recursive=True)

        response = requests.post(api + "/jobs", files={"file": ("orders.xml", ORDERS)},
                                 data={"format": "json"}, timeout=30)
        assert response.status_code == 202, response.text
        job_url = api + response.headers["Location"]
        job = wait_for(lambda: (job := requests.get(job_url, timeout=5).json())["status"]
                       in ("succeeded", "failed") and job, 30, "the job did not finish")
        assert job["status"] == "succeeded", job
        result = requests.get(job_url + "/result", timeout=10)
        assert result.json()["orders"]["order"][0]["item"] == "tea"

        os.killpg(supervisor.pid, stop_signal)
        assert supervisor.wait(timeout=60) == 0
    finally:
        if supervisor.poll() is None:  # a failed test leaves nothing running either
            os.killpg(supervisor.pid, signal.SIGKILL)
            supervisor.wait(timeout=10)
        for process in started:
            if process.is_running():
                process.kill()

    lines = records(out)
    assert records(err) == []
    said = own(lines)
    # What a newcomer is told before anything starts.
    assert "stage: development (DEPLOY_ENV)" in said
    assert any(m.startswith("API keys: not required") for m in said), said
    assert f"http://127.0.0.1:{api_port}/metrics: open, no token (development without " \
           "METRICS_TOKEN)" in said
    assert any(m.startswith(f"Flower: http://127.0.0.1:{flower_port}, asks for no password")
               for m in said), said

    stopped = [m.split()[0] for m in said if " stopped (exit status " in m]
    assert stopped == STOP_ORDER, said
    assert all(m.endswith("(exit status 0)") for m in said if " stopped (" in m), \
        shutdown(lines)
    assert not any("killed" in m for m in said), said
    # The worker finished its shutdown with its broker still there.
    worker = [line["message"] for line in lines if line.get("service") == "worker"]
    assert not any("Connection refused" in m or "Error 111" in m for m in worker), worker
    # Only the Flower that found the worker up: no failed inspections at its start.
    assert not any("Inspect method" in line["message"] for line in lines)

    assert started and not [p for p in started if p.is_running() and p.status() != "zombie"]
