"""A job that needs more memory than WORKER_MEMORY_LIMIT_MB fails with MEMORY_LIMIT_EXCEEDED,
once, and its pool process lives on to run the next job (instead of the kernel killing the
process and the job being retried until WORKER_LOST). The ceiling is set far below what this
job needs: a document whose one text value (9 MiB) the converter must hold whole, under 8 MiB."""

from __future__ import annotations

import json
import time

import psutil

from testkit.jobs_api import accepted_job, submit_file
from testkit.stack import Stack


def test_a_job_past_the_memory_ceiling_fails_by_name_and_the_process_lives_on(
        redis_server, tmp_path, samples):
    wide = tmp_path / "one-long-value.xml"
    wide.write_bytes(b"<root><note>" + b"x" * (9 * 1024 * 1024) + b"</note></root>")
    with Stack(tmp_path / "stack", redis=redis_server, name="memory",
               env={"WORKER_MEMORY_LIMIT_MB": "8", "JOB_STALL_SECONDS": "5"}) as stack:
        (child,) = psutil.Process(stack.worker.pid).children()
        job = accepted_job(submit_file(stack, wide, data={"format": "json"}))
        started = time.monotonic()
        failed = stack.wait_finished(job["id"], timeout=60)
        assert failed["status"] == "failed", failed
        assert failed["error"]["code"] == "MEMORY_LIMIT_EXCEEDED"
        assert failed["attempts"] == 1
        assert time.monotonic() - started < 20
        assert not list((stack.data_dir / "jobs" / job["id"]).glob("result.*"))

        # The same process runs the next job, with its whole room again.
        small = accepted_job(submit_file(stack, samples["small"], data={"format": "json"}))
        assert stack.wait_finished(small["id"])["status"] == "succeeded"
        assert [c.pid for c in psutil.Process(stack.worker.pid).children()] == [child.pid]
        time.sleep(6)  # past JOB_STALL_SECONDS: nothing runs the failed job again
        assert stack.get_job(job["id"])["attempts"] == 1
        lines = [json.loads(line) for line in stack.worker.lines()]
        assert not [line for line in lines if line["level"] in ("ERROR", "CRITICAL")]


def test_a_ceiling_below_the_readers_buffers_fails_the_job_in_json_lines(
        redis_server, tmp_path):
    """A ceiling so low (2 MiB) that the reader cannot hold one start tag whole: an attribute
    of 12 MiB (within CONVERTER_MAX_VALUE_BYTES, raised here, so that no limit of the
    converter's stops it first), which libxml2 buffers whole before it reports the element.
    The job fails (its allocation fails in Python — MEMORY_LIMIT_EXCEEDED — or inside
    libxml2, which the parser reports as a parse error), the process lives on, and nothing is
    written but JSON lines. (A big document of small values no longer does: the converter
    streams it in C, well within 2 MiB above the process's size.)"""
    wide = tmp_path / "one-long-attribute.xml"
    wide.write_bytes(b'<root><note text="' + b"x" * (12 * 1024 * 1024) + b'"/></root>')
    with Stack(tmp_path / "stack", redis=redis_server, name="memory-tiny",
               env={"WORKER_MEMORY_LIMIT_MB": "2",
                    "CONVERTER_MAX_VALUE_BYTES": str(32 * 1024 * 1024)}) as stack:
        (child,) = psutil.Process(stack.worker.pid).children()
        job = accepted_job(submit_file(stack, wide, data={"format": "json"}))
        failed = stack.wait_finished(job["id"], timeout=60)
        assert failed["status"] == "failed", failed
        assert failed["error"]["code"] in ("MEMORY_LIMIT_EXCEEDED", "XML_PARSE_ERROR"), failed
        assert failed["attempts"] == 1
        assert [c.pid for c in psutil.Process(stack.worker.pid).children()] == [child.pid]
    for line in stack.worker.lines():
        assert json.loads(line)["level"] != "CRITICAL", line
