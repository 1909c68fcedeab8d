"""The environment of the service's processes under test, and the one command line of each."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from testkit import BIN, REPO, MiB

MAX_UPLOAD = 96 * MiB  # MAX_UPLOAD_BYTES of the test stacks


def service_env(redis_url: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    """This process's environment without the service's settings, then the tests' settings,
    then `overrides` (an empty value: the setting's default)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLOWER_", "API_", "JOB_", "WORKER_", "REDIS_", "CELERY"))}
    env.update({
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "DEPLOY_ENV": "development",
        "REDIS_URL": redis_url,
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "INFO",
        "MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
        "WORKER_CONCURRENCY": "1",
        "WORKER_HEARTBEAT_SECONDS": "1",
        "API_WORKERS": "1",
        "API_THREADS": "8",
        "LEGACY_WAIT_SECONDS": "30",
        "PYTHONUNBUFFERED": "1",
        "REMAP_SIGTERM": "SIGQUIT",  # as the worker runs everywhere (docs/deployment.md)
        # Tests poll fast; the limits have tests of their own (test_limits.py).
        "RATE_LIMIT_PER_MINUTE": "100000",
        "MAX_ACTIVE_JOBS": "100000",
    })
    env.update(overrides)
    return env


def gunicorn() -> list[str]:
    """The API as every deployment runs it (the config file by path: any working directory)."""
    return [str(BIN / "gunicorn"), "-c", str(REPO / "gunicorn_config.py"), "api:create_app()"]


def celery_worker(node: str) -> list[str]:
    return [str(BIN / "celery"), "--quiet", "-A", "worker.app", "worker", "-n", node,
            "--without-gossip"]


def webhooks_worker(node: str) -> list[str]:
    """The webhooks worker (worker/webhooks_app.py): the webhooks' queue alone, in threads."""
    return [str(BIN / "celery"), "--quiet", "-A", "worker.webhooks_app", "worker", "-n", node,
            "--without-gossip"]


def celery_beat(schedule: Path) -> list[str]:
    return [str(BIN / "celery"), "--quiet", "-A", "worker.app", "beat", "--schedule",
            str(schedule)]


def flower() -> list[str]:
    return [sys.executable, "-m", "worker.flower"]
