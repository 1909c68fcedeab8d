"""The memory ceiling of a conversion: RLIMIT_AS in the pool process, set before each job.

A job may add WORKER_MEMORY_LIMIT_MB to the address space its process has when the job starts
(so a process left larger by an earlier job does not shrink the next job's room). Past it an
allocation fails: libxml2, lxml and Python answer with MemoryError, which the run records as
MEMORY_LIMIT_EXCEEDED (worker/runner.py) — the job fails once, by name, and its process lives
on, instead of the kernel's OOM killer taking the process (and, with it, the job's attempts one
after the other: WORKER_LOST). Only the soft limit is set: the hard limit stays where it was,
so that the next job can be given its own room.

Why RLIMIT_AS and not Celery's `worker_max_memory_per_child`: that one looks at a process only
after its task has finished, so it cannot stop a runaway job (it is kept, as
WORKER_MAX_MEMORY_PER_CHILD, to replace a process that a job left large).
"""

from __future__ import annotations

import resource

MiB = 1024 * 1024


def address_space() -> int:
    """This process's virtual size now, in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[0])
    return pages * resource.getpagesize()


def limit_job_memory(limit_mb: int) -> int | None:
    """Give the job about to run `limit_mb` MiB above the process's size now; returns the
    ceiling set, in bytes (None: no limit, `limit_mb` 0)."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if limit_mb <= 0:
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        return None
    ceiling = address_space() + limit_mb * MiB
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    return ceiling


def lift_job_memory_limit() -> None:
    """Between jobs, the process's own work (its Redis client, logging) has no ceiling."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
