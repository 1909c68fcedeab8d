"""Fixtures shared by the service's tests; the servers and stacks themselves are the test kit's
(testkit/)."""

from __future__ import annotations

import pytest

from testkit.redis_server import Database, RedisServer
from testkit.s3_server import S3Server


# One redis-server for the session (per xdist worker). Whoever writes to it takes a database of
# its own (redis_db, or a Stack's): session-scoped stacks keep their workers consuming until the
# end, and would take another module's jobs.
@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    server.wait_ready(15)
    yield server
    server.close()


@pytest.fixture(scope="module")
def redis_db(redis_server: RedisServer) -> Database:
    """A database of the session's redis-server for this test module alone."""
    return redis_server.database()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    """SeaweedFS's S3 gateway with one bucket (S3Server.BUCKET) and one key pair."""
    server = S3Server(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    server.wait_ready(60)
    yield server
    server.close()
