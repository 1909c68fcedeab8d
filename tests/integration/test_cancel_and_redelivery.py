"""Cancelling queued and running jobs; a job whose worker process dies is redelivered and
restarts cleanly."""

from __future__ import annotations

import os
import signal
import time

import psutil
import requests

from testkit.jobs_api import accepted_job, error_of, submit_file
from testkit.throttle import Throttle
from testkit.waiting import wait_for


def running_with_progress(stack, job_id: str) -> dict:
    return wait_for(lambda: (job := stack.get_job(job_id))["status"] == "running"
                    and job["progress"]["bytes_done"] > 0 and job, 60,
                    "the big job never reported progress", interval=0.05)


def test_cancel_a_queued_and_a_running_job(stack, samples):
    with Throttle(stack.worker):  # the big job runs for seconds, not a fraction of one
        big = accepted_job(submit_file(stack, samples["big"], data={"format": "json"}))
        running_with_progress(stack, big["id"])

        # One worker process: the next job waits in the queue behind the big one.
        queued = accepted_job(submit_file(stack, samples["small"]))
        details = error_of(requests.get(stack.url(f"/jobs/{queued['id']}/result"), timeout=10),
                           409, "JOB_NOT_FINISHED")["details"]
        assert details["status"] == "queued"
        response = requests.delete(stack.url(f"/jobs/{queued['id']}"), timeout=10)
        assert response.status_code == 202 and response.json()["status"] == "cancelled"
        assert queued["id"] not in stack.job_dirs()

        details = error_of(requests.get(stack.url(f"/jobs/{big['id']}/result"), timeout=10),
                           409, "JOB_NOT_FINISHED")["details"]
        assert details["status"] == "running"
        cancelled_at = time.monotonic()
        response = requests.delete(stack.url(f"/jobs/{big['id']}"), timeout=10)
        assert response.status_code == 202 and response.json()["status"] == "cancelled"
        # The worker stops within about a second and removes the job's files.
        wait_for(lambda: big["id"] not in stack.job_dirs(), 10, "the cancelled job's files stayed")
        assert time.monotonic() - cancelled_at < 5
        assert stack.get_job(big["id"])["status"] == "cancelled"

        # The worker is free again; the cancelled queued job is skipped, not run.
        following = accepted_job(submit_file(stack, samples["small"]))
        assert stack.wait_finished(following["id"])["status"] == "succeeded"
        assert stack.get_job(queued["id"])["status"] == "cancelled"
        assert stack.get_job(big["id"])["status"] == "cancelled"


def test_job_is_redelivered_when_its_worker_process_dies(stack, samples, cli_output):
    with Throttle(stack.worker):  # killed in the middle of its run; run again at full speed
        job = accepted_job(submit_file(stack, samples["big"], data={"format": "csv"}))
        running_with_progress(stack, job["id"])
        children = psutil.Process(stack.worker.pid).children()
        assert len(children) == 1
        os.kill(children[0].pid, signal.SIGKILL)  # as the OOM killer would

    finished = stack.wait_finished(job["id"], timeout=120)
    assert finished["status"] == "succeeded", finished
    assert stack.worker.alive()
    result = requests.get(stack.url(f"/jobs/{job['id']}/result"), timeout=60)
    assert result.content == cli_output(samples["big"], "csv")
    files = sorted(p.name for p in (stack.data_dir / "jobs" / job["id"]).iterdir())
    assert files == ["result.csv"]  # one result, no partial leftovers
    assert any("redelivered" in line and job["id"] in line for line in stack.worker.lines())


def test_cancelling_a_run_stuck_in_one_call_frees_its_process_within_seconds(stack, samples):
    """The only pool process is inside a call that never returns to Python (stopped, as inside
    one long libxml2 call: no progress callback runs, so the run never learns it was
    cancelled). Within JOB_CANCEL_GRACE_SECONDS (3) and a second the worker kills it, the pool
    starts another, and a new tiny job succeeds; the cancelled job is not run again and its
    files go."""
    with Throttle(stack.worker) as throttle:
        job = accepted_job(submit_file(stack, samples["big"], data={"format": "yaml"}))
        running_with_progress(stack, job["id"])
        (child,) = throttle.hold()
    waiting = accepted_job(submit_file(stack, samples["small"]))  # behind the stuck run

    cancelled_at = time.monotonic()
    response = requests.delete(stack.url(f"/jobs/{job['id']}"), timeout=10)
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    wait_for(lambda: not psutil.pid_exists(child.pid)
             or psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, 15,
             "the stuck process was never killed")
    freed = time.monotonic() - cancelled_at
    assert freed < 6, f"the process was killed {freed:.1f} s after the cancel"
    assert stack.wait_finished(waiting["id"], timeout=30)["status"] == "succeeded"
    wait_for(lambda: job["id"] not in stack.job_dirs(), 10, "the cancelled job's files stayed")

    (new_child,) = psutil.Process(stack.worker.pid).children()
    assert new_child.pid != child.pid
    time.sleep(2)  # a redelivered message would have been claimed by now
    cancelled = stack.get_job(job["id"])
    assert cancelled["status"] == "cancelled" and cancelled["attempts"] == 1
    assert stack.worker.alive()
    lines = [line for line in stack.worker.lines() if job["id"] in line]
    assert not [line for line in lines if "redelivered" in line or "queued again" in line]
    assert any("killing its process" in line for line in lines)
