"""Fixtures shared by the service's tests (helpers live in servicekit.py)."""

from __future__ import annotations

import pytest
from servicekit import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()
