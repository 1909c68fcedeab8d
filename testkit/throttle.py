"""Processes given a share of the CPU, as a container's CPU quota (cgroup cpu.max) gives it:
run for `share` of every `period`, stopped (SIGSTOP) for the rest, continued (SIGCONT) for good
when the block ends.

Tests whose faults must strike a conversion while it runs (a worker stopped, killed, Redis
lost, a time limit passed) need a run that lasts; the converter turns 100 MB into any format in
about a second, so the run is slowed instead, however fast the converter gets. The run is
otherwise untouched: it returns to Python between chunks, handles its signals when it next
runs, reports progress and writes its result as any run does.

    with throttled(pool_processes(stack.workers), share=0.1):
        job = accepted_job(submit_file(stack, big))   # ~10x as long as it would take
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator

import psutil

PERIOD = 0.1


def pool_processes(workers: Iterable) -> Callable[[], list[int]]:
    """The pool processes (the runs) of the given workers (testkit Services), found again at
    every period: a worker restarted or a pool process replaced is throttled too."""
    def pids() -> list[int]:
        found = []
        for worker in workers:
            with contextlib.suppress(psutil.Error, AttributeError):
                found += [child.pid for child in psutil.Process(worker.pid).children()]
        return found
    return pids


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


@contextlib.contextmanager
def throttled(pids: Callable[[], Iterable[int]], share: float = 0.1,
              period: float = PERIOD) -> Iterator[None]:
    """`pids()`'s processes run `share` of the time while the block runs."""
    if not 0 < share < 1:
        raise ValueError(f"share must be between 0 and 1, not {share}")
    done = threading.Event()
    seen: set[int] = set()

    def cycle() -> None:
        try:
            while not done.is_set():
                current = set(pids())
                seen.update(current)
                _signal_all(current, signal.SIGCONT)
                if done.wait(period * share):
                    break
                _signal_all(current, signal.SIGSTOP)
                done.wait(period * (1 - share))
        finally:
            _signal_all(seen, signal.SIGCONT)

    thread = threading.Thread(target=cycle, name="throttle", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
