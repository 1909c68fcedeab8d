"""The memory ceiling of a job (worker/memory.py), in a process of its own: past the
room it was given an allocation raises MemoryError; lifted, the same allocation works; the
ceiling is measured from the process's size when the job starts.

The process is spawned, not forked from pytest's: RLIMIT_AS bounds new address space only, and
a forked child inherits its parent's heap, free chunks and all — after other tests have
allocated and freed big buffers, glibc may serve the 64 MiB from memory the process already
has (inside its size, so under any ceiling), and the probe would test pytest's history, not the
ceiling."""

from __future__ import annotations

import multiprocessing
import resource

from worker.memory import MiB, address_space, lift_job_memory_limit, limit_job_memory


def _in_a_limited_process(queue) -> None:
    outcome = {}
    ceiling = limit_job_memory(16)
    outcome["room"] = ceiling - address_space()
    try:
        bytearray(64 * MiB)
        outcome["under"] = "allocated"
    except MemoryError:
        outcome["under"] = "MemoryError"
    small = bytearray(4 * MiB)  # within the room
    outcome["small"] = len(small)
    lift_job_memory_limit()
    outcome["lifted"] = len(bytearray(64 * MiB))
    outcome["soft"], outcome["hard"] = resource.getrlimit(resource.RLIMIT_AS)
    outcome["none"] = limit_job_memory(0)
    queue.put(outcome)


def test_a_job_gets_its_room_and_no_more():
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_in_a_limited_process, args=(queue,))
    child.start()
    outcome = queue.get(timeout=30)
    child.join(30)
    assert 15 * MiB < outcome["room"] <= 16 * MiB
    assert outcome["under"] == "MemoryError"
    assert outcome["small"] == 4 * MiB
    assert outcome["lifted"] == 64 * MiB
    assert outcome["soft"] == outcome["hard"]  # lifted: back to the process's own limit
    assert outcome["none"] is None
