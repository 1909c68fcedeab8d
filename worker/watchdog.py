"""Runs stopped from outside: a Celery bootstep (added in worker/app.py) in every worker's main
process, for the two cases where a pool process cannot be trusted to stop by itself — it may be
inside one long C call, where no Python code (no progress callback, no signal handler) runs.

- **A cancelled job**: its run notices the cancellation at its next progress report (twice a
  second) and stops. Every second the watchdog reads the jobs its pool processes are running;
  one cancelled for JOB_CANCEL_GRACE_SECONDS whose run is still going has its process killed
  (SIGKILL, through the pool: the message is acknowledged, never redelivered) and replaced by
  the pool, and the job's files are removed once the process is gone.
- **The hard time limit** (JOB_TIME_LIMIT): billiard kills the process and Celery acknowledges
  the message; the run never recorded an outcome, so the job would look lost and be run again.
  The watchdog fails it with TIME_LIMIT_EXCEEDED at once instead (`task_failure`, sent by the
  main process for a hard time limit).
- **The worker told to stop** (SIGTERM): Celery hands running jobs back after
  WORKER_SOFT_SHUTDOWN_TIMEOUT by sending their processes SIGTERM, then waits for them — for a
  process inside one long call, until the hard time limit. Every SIGTERM the pool sends a
  process is followed, JOB_CANCEL_GRACE_SECONDS later, by SIGKILL if the process is still
  there (its message goes back to the queue, as for any lost process), so the worker exits
  within seconds.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import threading
import time
from pathlib import Path

from billiard.exceptions import TimeLimitExceeded
from celery import bootsteps, signals
from celery.platforms import signals as platform_signals
from celery.worker import state

from common import errors
from common.errors import ServiceError
from common.logs import log_context
from common.settings import load_settings
from jobs import CONVERT_TASK, JobStatus, Lifecycle, open_service

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0


def time_limit_exceeded() -> ServiceError:
    return ServiceError(errors.TIME_LIMIT_EXCEEDED,
                        "the conversion took longer than the time limit allows")


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[1])


def _gone(pid: int) -> bool:
    """The process has exited (it may still be a zombie, not yet reaped by the pool)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


class Watchdog(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer", "celery.worker.components:Pool"}

    def __init__(self, worker: object, **kwargs: object) -> None:
        super().__init__(worker, **kwargs)
        self.timer_ref = None
        self.lifecycle: Lifecycle | None = None
        self.grace = 0.0
        self.killed: dict[str, int] = {}  # job id → pid of its killed process

    def start(self, worker: object) -> None:
        settings = load_settings()
        self.worker = worker
        self.grace = settings.job_cancel_grace_seconds
        self._follow_up_terminations(worker.pool)  # type: ignore[attr-defined]
        self.lifecycle = open_service(settings, worker.app).lifecycle  # type: ignore[attr-defined]
        self.timer_ref = worker.timer.call_repeatedly(  # type: ignore[attr-defined]
            TICK_SECONDS, self._tick, (), priority=10)
        signals.task_failure.connect(self._on_task_failure, weak=False)

    def stop(self, worker: object) -> None:
        signals.task_failure.disconnect(self._on_task_failure)
        if self.timer_ref is not None:
            self.timer_ref.cancel()
            self.timer_ref = None

    # -- the hard time limit

    def _on_task_failure(self, sender: object = None, task_id: str | None = None,
                         exception: BaseException | None = None, args: tuple = (),
                         **_: object) -> None:
        if not isinstance(exception, TimeLimitExceeded) or not args:
            return  # a run's own failure (sent in the pool process), or another task's
        if getattr(sender, "name", None) != CONVERT_TASK:
            return
        job_id = args[0]
        with log_context(job_id=job_id):
            try:
                self.lifecycle.stopped_run(job_id, self.worker.hostname,  # type: ignore
                                           time_limit_exceeded())
            except Exception as exc:  # Redis away: recovery requeues it once it is back
                log.warning("time limit not recorded: %s: %s", type(exc).__name__, exc)

    # -- processes told to stop

    def _follow_up_terminations(self, pool: object) -> None:
        """SIGTERM from the pool (Celery cancelling a job at shutdown) is followed by SIGKILL
        after the grace period when the process has not gone."""
        terminate_job = pool.terminate_job  # type: ignore[attr-defined]

        @functools.wraps(terminate_job)
        def terminate_then_kill(pid: int, sig: object = None) -> None:
            terminate_job(pid, sig)
            if sig is None or platform_signals.signum(sig) != signal.SIGKILL:
                timer = threading.Timer(self.grace, self._kill_if_still_there, (pid,))
                timer.daemon = True  # the worker may be gone before it fires
                timer.start()

        pool.terminate_job = terminate_then_kill  # type: ignore[attr-defined]

    def _kill_if_still_there(self, pid: int) -> None:
        if _gone(pid) or _parent(pid) != os.getpid():
            return
        log.warning("a pool process told to stop is still running after %d s: killing it",
                    self.grace, extra={"pid": pid})
        with contextlib.suppress(OSError):  # gone meanwhile
            os.kill(pid, signal.SIGKILL)

    # -- cancelled runs

    def _tick(self) -> None:
        try:
            self._stop_cancelled_runs()
            self._remove_files_of_killed()
        except Exception as exc:  # Redis away: the broker connection says so already
            log.warning("watchdog skipped: %s: %s", type(exc).__name__, exc)

    def _stop_cancelled_runs(self) -> None:
        now = time.time()
        for request in list(state.active_requests):
            if request.name != CONVERT_TASK or not request.args or not request.time_start:
                continue
            job_id = request.args[0]
            if job_id in self.killed:
                continue
            job = self.lifecycle.get(job_id)  # type: ignore[union-attr]
            if job is None or job.status is not JobStatus.CANCELLED:
                continue
            if now - (job.finished_at or now) < self.grace:
                continue
            pid = request.worker_pid
            with log_context(job_id=job_id, request_id=job.request_id):
                log.warning("cancelled job still running after %d s: killing its process",
                            self.grace, extra={"pid": pid})
            self.killed[job_id] = pid
            request.terminate(self.worker.pool, signal="SIGKILL")  # type: ignore[attr-defined]

    def _remove_files_of_killed(self) -> None:
        for job_id, pid in list(self.killed.items()):
            if pid and not _gone(pid):
                continue  # its files go once nothing can write them any more
            with log_context(job_id=job_id):
                self.lifecycle.stopped_run(job_id, self.worker.hostname, None)  # type: ignore
            del self.killed[job_id]
