"""The real stacks for integration tests (testkit.stack.Stack): redis-server, a Celery worker
process, the API under gunicorn, and Flower — each a subprocess with its stdout captured to a
file that the tests read (every line must be JSON)."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import pytest

from testkit import BIN, REPO
from testkit.stack import Stack


@pytest.fixture(scope="session")
def stack(redis_server, tmp_path_factory: pytest.TempPathFactory):
    with Stack(tmp_path_factory.mktemp("stack"), redis=redis_server, flower=True,
               env={"FLOWER_BASIC_AUTH": "admin:secret"}) as stack:
        yield stack


@pytest.fixture(scope="session")
def keyed_stack(redis_server, tmp_path_factory: pytest.TempPathFactory):
    """AUTH_MODE=api_key (clients made with `key(name, ...)`); webhooks may reach loopback
    receivers."""
    with Stack(tmp_path_factory.mktemp("keyed"), redis=redis_server, keys=True, name="keyed",
               env={"WEBHOOK_ALLOW_PRIVATE": "true", "WEBHOOK_RETRY_SCHEDULE": "1,1,1",
                    "RATE_LIMIT_PER_MINUTE": "1000", "MAX_ACTIVE_JOBS": "50"}) as stack:
        yield stack


# -- input files


@pytest.fixture(scope="module")
def s3_stack(redis_server, s3_server, tmp_path_factory: pytest.TempPathFactory):
    """STORAGE_URL=s3://…: a stack whose API and worker share nothing but Redis and the bucket."""
    with Stack(tmp_path_factory.mktemp("s3stack"), redis=redis_server, s3=s3_server,
               name="s3") as stack:
        yield stack


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small and large inputs made once per session."""
    from bench.generate import generate

    root = tmp_path_factory.mktemp("samples")
    small = root / "orders.xml"
    generate(0.25, small)
    big = root / "big.xml"
    generate(64, big)
    gz = root / "orders.xml.gz"
    gz.write_bytes(gzip.compress(small.read_bytes()))
    malformed = root / "broken.xml"
    malformed.write_bytes(b"<root>\n  <a>one</a>\n  <b>two</a>\n</root>\n")
    laughs = root / "laughs.xml"
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    laughs.write_text('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n' + "\n".join(entities) +
                      "\n]>\n<lolz>&lol9;</lolz>\n")
    return {"small": small, "big": big, "gz": gz, "malformed": malformed, "laughs": laughs}


@pytest.fixture(scope="session")
def cli_output(tmp_path_factory: pytest.TempPathFactory):
    """What `xmlconv convert` writes for a file and format (cached)."""
    root = tmp_path_factory.mktemp("cli")
    cache: dict[tuple, bytes] = {}

    def run(source: Path, fmt: str, *options: str) -> bytes:
        key = (source, fmt, options)
        if key not in cache:
            out = root / f"{len(cache)}.{fmt}"
            subprocess.run([str(BIN / "xmlconv"), "convert", str(source), "-o", str(out),
                            "--to", fmt, *options], check=True, cwd=REPO)
            cache[key] = out.read_bytes()
        return cache[key]

    return run
