"""The hostile corpus (testkit/hostile.py) as a client submits it: every shape, as json and as
csv, through the real API to a real worker under the service's default limits. Each job ends
as the converter alone ends under the same limits (succeeded, or failed with the limit's code),
within seconds, and the worker's pool process stays under the 150 MB bound while it runs them
all."""

from __future__ import annotations

import io
from datetime import datetime

import psutil
import pytest
import requests

from common.settings import load_settings
from converter import ConversionError, convert
from testkit.hostile import SHAPES
from testkit.jobs_api import accepted_job
from testkit.service import vm_hwm_kib
from testkit.stack import Stack
from worker.runner import conversion_limits

FORMATS = ("json", "csv")
BOUND_MB = 150
SECONDS = 20  # each job, from its start to its end, on a shared 2-core machine


@pytest.fixture(scope="module")
def lone_worker(redis_server, tmp_path_factory):
    """One worker with one pool process: every job runs in the same process, so its VmHWM is
    the peak over them all."""
    with Stack(tmp_path_factory.mktemp("hostile"), redis=redis_server, name="hostile",
               env={"WORKER_CONCURRENCY": "1"}) as stack:
        yield stack


def expected_code(data: bytes, fmt: str) -> str | None:
    """What the converter alone makes of it under the limits a worker gives this job."""
    limits = conversion_limits(load_settings({"DEPLOY_ENV": "development"}), len(data))
    try:
        convert(io.BytesIO(data), io.BytesIO(), fmt, limits=limits)
    except ConversionError as error:
        return error.code
    return None


def seconds_taken(job: dict) -> float:
    started, finished = (datetime.fromisoformat(job[k].replace("Z", "+00:00"))
                         for k in ("started_at", "finished_at"))
    return (finished - started).total_seconds()


def test_every_hostile_shape_ends_with_its_code_fast_and_in_bounded_memory(lone_worker):
    submitted = {}
    for name, make in SHAPES.items():
        data = make()
        for fmt in FORMATS:
            response = requests.post(lone_worker.url("/jobs"), params={"format": fmt}, data=data,
                                     headers={"Content-Type": "application/xml"}, timeout=60)
            submitted[name, fmt] = (accepted_job(response)["id"], expected_code(data, fmt))
    pool = psutil.Process(lone_worker.worker.pid).children()
    assert len(pool) == 1, "one pool process runs every job"

    codes = set()
    for (name, fmt), (job_id, expected) in submitted.items():
        job = lone_worker.wait_finished(job_id, timeout=120)
        got = job["error"]["code"] if job["status"] == "failed" else None
        assert job["status"] in ("succeeded", "failed"), (name, fmt, job)
        assert got == expected, (name, fmt, job["error"])
        assert seconds_taken(job) < SECONDS, (name, fmt, job)
        codes.add(got)
    # The corpus is hostile: most of the limits answer for some shape.
    assert {"TOO_MANY_ATTRIBUTES", "ATTRIBUTE_DEFAULTS_LIMIT", "TOO_MANY_NAMES"} <= codes
    assert None in codes  # and the shapes within the limits convert

    [process] = pool
    assert psutil.Process(lone_worker.worker.pid).children() == [process], "no process was lost"
    assert vm_hwm_kib(process.pid) < BOUND_MB * 1024
