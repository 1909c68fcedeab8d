"""Fixtures shared by the service's tests (helpers live in servicekit.py)."""

from __future__ import annotations

import pytest
from servicekit import RedisServer, S3Server


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
