"""No process dies of a Redis stop (issue 18's steps): a redis-server outside the stack, a
64 MB json job at 10% or more (its worker slowed to a tenth, so that it runs through the outage)
on a worker with a pool process free (so its consumer waits in BRPOP), then SIGTERM — or
SIGKILL — to redis-server, which comes back on the same port with its data (append-only file)
or without it. Every process stays up; the job succeeds once (with its data), and a new job
succeeds after."""

from __future__ import annotations

import json
import shutil
import signal
import time

import pytest
import requests

from jobs import keys
from testkit.jobs_api import accepted_job, submit_file
from testkit.redis_server import RedisServer
from testkit.stack import Stack
from testkit.throttle import Throttle
from testkit.waiting import wait_for

DOWN_SECONDS = 4


@pytest.mark.parametrize(("sig", "keep_data"), [
    (signal.SIGTERM, True), (signal.SIGKILL, True), (signal.SIGTERM, False)],
    ids=["sigterm", "sigkill", "sigterm-without-data"])
def test_redis_stop_under_a_running_job_kills_no_process(tmp_path, samples, sig, keep_data):
    outside = RedisServer(tmp_path / "redis")
    outside.start()
    outside.wait_ready(15)
    try:
        with Stack(tmp_path / "stack", redis=outside, name="redis-stop", beat=True,
                   env={"WORKER_CONCURRENCY": "2", "JOB_STALL_SECONDS": "5"}) as stack:
            with Throttle(stack.worker):  # the job runs through the outage
                job = accepted_job(submit_file(stack, samples["big"], data={"format": "json"}))
                record = stack.client()
                wait_for(lambda: (r := record.hgetall(keys.job(job["id"]))).get("status") ==
                         "running" and int(r["bytes_done"]) >= int(r["input_size"]) // 10, 60,
                         "the job never reached 10%", interval=0.02)
                outside.signal(sig)
                assert outside.wait_exit(30)
                if not keep_data:
                    shutil.rmtree(tmp_path / "redis")
                    (tmp_path / "redis").mkdir()
                time.sleep(DOWN_SECONDS)
                outside.start()
                outside.wait_ready(15)

            if keep_data:
                done = stack.wait_finished(job["id"], timeout=180)
                assert done["status"] == "succeeded", done
                def finishes() -> list[str]:  # logged just after the outcome was recorded
                    return [line for line in stack.worker.lines()
                            if job["id"] in line and '"job succeeded"' in line]
                wait_for(finishes, 10, "the job's success was never logged")
                time.sleep(1)
                assert len(finishes()) == 1
                result = sorted(p.name for p in (stack.data_dir / "jobs" / job["id"]).iterdir())
                assert result == ["result.json"]
            else:  # Redis forgot the job: it answers as unknown, and nothing runs it twice
                wait_for(lambda: requests.get(stack.url(f"/jobs/{job['id']}"),
                                              timeout=10).status_code == 404, 30,
                         "the forgotten job still answers")
            small = accepted_job(submit_file(stack, samples["small"]))
            assert stack.wait_finished(small["id"], timeout=60)["status"] == "succeeded"

            for process in stack.processes():
                assert process.alive(), f"{process.name} exited:\n" + "\n".join(
                    process.lines()[-5:])
                assert process.starts == 1
            for line in stack.worker.lines():
                record_ = json.loads(line)
                assert record_["level"] != "CRITICAL", record_
                assert "Unrecoverable" not in record_["message"]
    finally:
        outside.close()
