"""How many CPUs this process may really use: the CPU-based defaults (API_WORKERS,
WORKER_CONCURRENCY) must follow a container's limit, not the host's core count.

`os.cpu_count()` inside a container reports every core of the host; the limit lives in the
CPU affinity mask (`--cpuset-cpus`) and in the cgroup's CPU quota (`--cpus`, a Kubernetes
`limits.cpu`, an ECS task's `cpu`). The smallest of the three wins, rounded up, at least 1.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _quota_v2(root: Path) -> float | None:
    """cgroup v2: `cpu.max` holds "QUOTA PERIOD" or "max PERIOD"."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _quota_v1(root: Path) -> float | None:
    """cgroup v1: cpu.cfs_quota_us (-1: no limit) over cpu.cfs_period_us."""
    for folder in (root / "cpu", root / "cpu,cpuacct"):
        try:
            quota = int((folder / "cpu.cfs_quota_us").read_text())
            period = int((folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return None if quota <= 0 or period <= 0 else quota / period
    return None


def available_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    counts = [os.cpu_count() or 1]
    if hasattr(os, "sched_getaffinity"):
        counts.append(len(os.sched_getaffinity(0)))
    quota = _quota_v2(cgroup_root)
    if quota is None:
        quota = _quota_v1(cgroup_root)
    if quota is not None:
        counts.append(math.ceil(quota))
    return max(1, min(counts))
