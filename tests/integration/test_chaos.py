"""A small chaos run (bench/chaos.py): its own stack under a fault of every kind — worker pool
child and whole worker SIGKILLed, worker SIGTERMed (and SIGKILLed 2 s later), the Redis primary
and the API restarted, the Redis primary SIGKILLed (a Sentinel promotes its replica: the run's
Redis is a primary, a replica and three Sentinels) — and no job lost, duplicated or wrong, no
process exited by itself, and the hostile client's jobs failed with their codes. `make chaos` is
the full run."""

from __future__ import annotations

import subprocess
import sys

from testkit import REPO


def test_no_job_is_lost_duplicated_or_wrong_under_faults(tmp_path):
    argv = [sys.executable, "-m", "bench.chaos", "--jobs", "100", "--seed", "1",
            "--faults-per-kind", "1", "--large-max-mb", "5", "--workdir", str(tmp_path),
            "--deadline", "170", "--stall-timeout", "45"]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=280)
    print(done.stdout)  # the table, shown by pytest -s or on failure
    tail = "\n".join(done.stderr.splitlines()[-40:])
    assert done.returncode == 0, f"chaos run failed; logs in {tmp_path}\n{done.stdout}\n{tail}"
    assert "| **lost** | 0 |" in done.stdout
    assert "| **processes exited untold** | 0 |" in done.stdout
