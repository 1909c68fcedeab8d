"""A job that outlives its time limit fails with TIME_LIMIT_EXCEEDED, once: the soft limit
(JOB_SOFT_TIME_LIMIT) stops a run that returns to Python; the hard limit (JOB_TIME_LIMIT) kills
a process that does not (one long C call), and that job is not run again. Stacks of their own:
one worker with short limits on a database of its own."""

from __future__ import annotations

import json
import os
import signal
import time

import psutil

from api import create_app
from common.settings import load_settings
from testkit.jobs_api import accepted_job, submit_file
from testkit.stack import Stack
from testkit.throttle import pool_processes, throttled
from testkit.waiting import wait_for


def test_soft_time_limit_fails_the_job_and_the_worker_shuts_down_in_json(
        redis_server, tmp_path, samples):
    with Stack(tmp_path, redis=redis_server, api=False, name="limited",
               env={"JOB_SOFT_TIME_LIMIT": "1", "JOB_TIME_LIMIT": "30"}) as stack:
        client = create_app(load_settings(stack.env)).test_client()
        # 64 MB of indented JSON by a run given a twentieth of the CPU: about ten times the
        # 1 s limit, which stops it within a second or two.
        with throttled(pool_processes(stack.workers), share=0.05):
            response = client.post("/jobs?format=json&indent=2",
                                   data=samples["big"].read_bytes(),
                                   content_type="application/xml")
            assert response.status_code == 202, response.get_json()
            job_id = response.get_json()["id"]
            job = wait_for(lambda: (j := client.get(f"/jobs/{job_id}").get_json())["status"]
                           in ("succeeded", "failed") and j, 60,
                           "the limited job did not finish", interval=0.1)
        assert job["status"] == "failed"
        assert job["error"]["code"] == "TIME_LIMIT_EXCEEDED"
        assert not list((stack.data_dir / "jobs" / job_id).glob("result.*"))
    for line in stack.worker.lines():  # shutdown notices included
        assert json.loads(line)["service"] == "worker"


SOFT, HARD, STALL = 3, 5, 5


def test_hard_time_limit_fails_a_job_stuck_in_one_call_once_and_frees_the_worker(
        redis_server, tmp_path, samples):
    with Stack(tmp_path, redis=redis_server, name="hard-limit",
               env={"JOB_SOFT_TIME_LIMIT": str(SOFT), "JOB_TIME_LIMIT": str(HARD),
                    "JOB_STALL_SECONDS": str(STALL), "JOB_MAX_ATTEMPTS": "3"}) as stack:
        job = accepted_job(submit_file(stack, samples["big"], data={"format": "json"}))
        wait_for(lambda: (j := stack.get_job(job["id"]))["status"] == "running"
                 and j["progress"]["bytes_done"] > 0, 30, "the job never ran", interval=0.02)
        (child,) = psutil.Process(stack.worker.pid).children()
        # The run stops running Python at all, as inside one long libxml2 call: neither its
        # progress callback nor the soft limit's signal handler gets a turn.
        os.kill(child.pid, signal.SIGSTOP)
        stopped = time.monotonic()

        failed = stack.wait_finished(job["id"], timeout=HARD + 15)
        took = time.monotonic() - stopped
        assert failed["status"] == "failed", failed
        assert failed["error"]["code"] == "TIME_LIMIT_EXCEEDED"
        assert took < HARD + 3, f"failed {took:.1f} s after the run stopped"
        assert not list((stack.data_dir / "jobs" / job["id"]).glob("result.*"))

        # The pool replaced the process; a new job runs on it.
        new = wait_for(lambda: [c for c in psutil.Process(stack.worker.pid).children()
                                if c.pid != child.pid], 30, "no new pool process")
        assert len(new) == 1
        small = accepted_job(submit_file(stack, samples["small"]))
        assert stack.wait_finished(small["id"])["status"] == "succeeded"

        # Past the time recovery would take to requeue a lost run: still failed, run once.
        time.sleep(STALL + 3)
        after = stack.get_job(job["id"])
        assert after["status"] == "failed" and after["error"]["code"] == "TIME_LIMIT_EXCEEDED"
        assert after["attempts"] == 1
        lines = [json.loads(line) for line in stack.worker.lines()]
        about = [line["message"] for line in lines if line.get("job_id") == job["id"]]
        assert not [m for m in about if "queued again" in m or "redelivered" in m], about
        assert stack.worker.alive()
