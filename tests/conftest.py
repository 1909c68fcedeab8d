"""Fixtures shared by the service's tests (helpers live in servicekit.py)."""

from __future__ import annotations

import pytest
from servicekit import RedisServer, S3Server


# One redis-server for the session; each test module that writes to it keeps to its own
# database, because session-scoped stacks keep their workers consuming until the end:
# 0 stack, recovery · 1 time limit · 2 job store · 3 lifecycle · 4 keyed stack · 5 clients ·
# 6 metrics (unit) · 7 API metrics · 8, 9 metrics (integration) · 10 S3 stack ·
# 11 slow clients · 12 S3 redirect · 13 limits · 14 webhook delivery
@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    """SeaweedFS's S3 gateway with one bucket (S3Server.BUCKET) and one key pair."""
    server = S3Server(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()
