"""Stopping any process of the service writes JSON lines only: the worker (with a job running,
which it hands back), beat, Flower and the API (gunicorn + gevent), each sent SIGTERM (docker
stop, Kubernetes: each exits 0) or SIGINT (Ctrl-C: Celery's worker then exits 1, its own way of
saying it was interrupted) on its own."""

from __future__ import annotations

import json
import signal

import pytest

from testkit.jobs_api import accepted_job, submit_file
from testkit.stack import Stack
from testkit.throttle import Throttle
from testkit.waiting import wait_for


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["term", "int"])
def test_every_process_stops_in_json(redis_server, tmp_path, samples, stop_signal):
    with Stack(tmp_path, redis=redis_server, beat=True, flower=True, name="shutdown",
               env={"FLOWER_BASIC_AUTH": "admin:secret"}) as stack, \
            Throttle(stack.worker):  # the job is still running when the worker is told
        job = accepted_job(submit_file(stack, samples["big"], data={"format": "json"}))
        wait_for(lambda: stack.get_job(job["id"])["status"] == "running", 60,
                 "the job never ran")
        for process in (stack.worker, stack.beat, stack.flower, stack.api):
            process.signal(stop_signal)
            assert process.wait_exit(60), f"{process.name} did not stop"
            interrupted_worker = stop_signal == signal.SIGINT and process is stack.worker
            assert process.popen.returncode == (1 if interrupted_worker else 0), (
                process.name, process.lines()[-5:])
    for process in stack.processes():
        lines = process.lines()
        assert lines, process.name
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                pytest.fail(f"{process.name} wrote a line that is not JSON: {line!r}")
            assert isinstance(record, dict) and record["level"] != "CRITICAL", record
