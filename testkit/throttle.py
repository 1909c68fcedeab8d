"""Workers' pool processes slowed down from outside, as on a machine busy with other work.

A test that acts on a running job (cancels it, kills its process, stops its worker or Redis)
needs the job to run for seconds; the converter turns a test-sized file around in well under
one, and gets faster. Stopping and continuing the pool processes (SIGSTOP, SIGCONT) stretches a
run's wall time by a known factor however fast the converter is, with no hook in the code under
test: the run, its progress writes, its time limits and its cancellation all go on as usual,
only slower.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

import psutil

from testkit.service import Service
from testkit.waiting import wait_until

PERIOD_SECONDS = 0.1


def pool_processes(worker: Service) -> list[psutil.Process]:
    """The worker's pool processes (its children), none if it is not running."""
    with contextlib.suppress(psutil.Error, AssertionError):
        return psutil.Process(worker.pid).children()
    return []


def signal_all(processes: list[psutil.Process], sig: int) -> None:
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, sig)


class Throttle:
    """`with Throttle(worker, ...)`: the workers' pool processes run `share` of the time.

    Runs started meanwhile (a pool process restarted, a worker started again) are slowed too;
    at the end of the block every pool process runs freely again, unless `hold()` ended it.
    """

    def __init__(self, *workers: Service, share: float = 0.1) -> None:
        assert workers and 0 < share < 1
        self.workers = workers
        self.share = share
        self._done = threading.Event()
        self._leave_stopped: tuple[Service, ...] = ()
        self._thread = threading.Thread(target=self._run, name="throttle", daemon=True)

    def __enter__(self) -> Throttle:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._end(leave_stopped=())

    def hold(self, *workers: Service) -> list[psutil.Process]:
        """Stop throttling with the pool processes of `workers` (default: all) stopped, as
        inside one call that never returns to Python (no progress callback, no signal handler
        runs), the others running freely; returns the stopped ones."""
        held = workers or self.workers
        self._end(leave_stopped=held)
        return self._pool(held)

    def _pool(self, workers: tuple[Service, ...] | None = None) -> list[psutil.Process]:
        return [process for worker in workers or self.workers
                for process in pool_processes(worker)]

    def _end(self, leave_stopped: tuple[Service, ...]) -> None:
        if self._thread.is_alive():
            self._leave_stopped = leave_stopped
            self._done.set()
            self._thread.join()

    def _run(self) -> None:
        running, stopped = PERIOD_SECONDS * self.share, PERIOD_SECONDS * (1 - self.share)
        while True:
            signal_all(self._pool(), signal.SIGCONT)
            if self._done.wait(running):
                break
            signal_all(self._pool(), signal.SIGSTOP)
            if self._done.wait(stopped):
                break
        free = tuple(worker for worker in self.workers if worker not in self._leave_stopped)
        if self._leave_stopped:
            signal_all(self._pool(self._leave_stopped), signal.SIGSTOP)
        if free:
            signal_all(self._pool(free), signal.SIGCONT)


@contextlib.contextmanager
def stopped_pool(worker: Service):
    """`worker` takes no job for the `with` block: its pool processes are stopped (SIGSTOP), so a
    job submitted meanwhile stays queued however fast the converter gets, and runs once the
    block ends (SIGCONT)."""
    pool = wait_until(lambda: pool_processes(worker), 30)
    assert pool, f"{worker.name} has no pool process"
    signal_all(pool, signal.SIGSTOP)
    try:
        yield
    finally:
        signal_all(pool, signal.SIGCONT)
