"""Every environment variable the service reads, parsed and validated in one place.

`load_settings()` returns a frozen `Settings` or raises `SettingsError` naming the variable;
`settings_or_exit()` is what processes call at start: a bad value stops them with a JSON line
that names the variable. `.env.example` lists the same variables with their defaults.

Defaults depend on DEPLOY_ENV (development | staging | production): development binds to
loopback and keeps data under ./var and is the only stage where DEBUG may be on; staging and
production bind to every interface and need REDIS_URL (or REDIS_SENTINELS, which then name the
primary: REDIS_URL gives only its database and password); production also needs DATA_DIR, and
Flower there refuses to start without strong FLOWER_BASIC_AUTH credentials. GET /metrics is open
in development only; elsewhere it needs METRICS_TOKEN (a short one is refused in production).

Secrets can come from files, the usual Docker and Kubernetes way: each variable of
`FILE_VARIABLES` has a `<NAME>_FILE` twin naming a file whose content is used when the variable
itself is empty (the variable wins when both are given, so a value in `.env` overrides the file
docker-compose.yml points at). The built-in development SECRET_KEY is refused outside
development: staging and production need a SECRET_KEY of their own (compose generates one on
first start, deploy/secrets.sh). REDIS_PASSWORD (or its file) is put into a REDIS_URL that has
no password of its own.
"""

from __future__ import annotations

import base64
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from .cpus import available_cpus
from .logs import json_line
from .signing import webhook_secret

STAGES = ("development", "staging", "production")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MiB = 1024 * 1024

_CPUS = available_cpus()  # the container's CPU limit, not the host's core count

# Development only; staging and production require a SECRET_KEY of their own.
INSECURE_SECRET_KEY = "insecure-development-secret-key-do-not-use-in-production"

# Per-stage defaults; a variable missing from a stage's table has no default there (required).
_STAGE_DEFAULTS: dict[str, dict[str, str]] = {
    "development": {
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "DATA_DIR": "var/data",
        "LOG_LEVEL": "INFO",
        "API_BIND": "127.0.0.1:8000",
        "FLOWER_ADDRESS": "127.0.0.1",
        "FLOWER_BASIC_AUTH": "",
        "AUTH_MODE": "none",
        "SECRET_KEY": INSECURE_SECRET_KEY,
    },
    "staging": {
        "DATA_DIR": "/data",
        "LOG_LEVEL": "INFO",
        "API_BIND": "0.0.0.0:5000",
        "FLOWER_ADDRESS": "0.0.0.0",
        "FLOWER_BASIC_AUTH": "",
        "AUTH_MODE": "api_key",
        # No SECRET_KEY: the development one is public (it is in this file).
    },
    "production": {
        "LOG_LEVEL": "INFO",
        "API_BIND": "0.0.0.0:5000",
        "FLOWER_ADDRESS": "0.0.0.0",
        "FLOWER_BASIC_AUTH": "",  # but Flower itself refuses to start without it
        "AUTH_MODE": "api_key",  # and `none` is refused
    },
}

# Defaults shared by every stage.
_COMMON_DEFAULTS: dict[str, str] = {
    "DEBUG": "false",  # refused outside development
    "MAX_UPLOAD_BYTES": str(300 * MiB),
    # bgzip (64 KiB blocks) makes ~4,800 members of a 300 MB file; docs/limits.md, "Uploads".
    "MAX_GZIP_MEMBERS": "10000",
    "MAX_FORM_PARTS": "100",  # a whole form (file, format, every option, tag, …) is ~30
    "STORAGE_MIN_FREE_BYTES": str(1024 * MiB),  # uploads stop before DATA_DIR's disk is this full
    "UPLOAD_RESERVATION_SECONDS": "60",  # an upload's quota slot outlives a dead API this long
    "RESULT_TTL_SECONDS": "86400",
    "TOMBSTONE_TTL_SECONDS": str(7 * 86400),
    "JOB_SOFT_TIME_LIMIT": "1740",
    "JOB_TIME_LIMIT": "1800",
    "BROKER_VISIBILITY_TIMEOUT": "",  # empty: JOB_TIME_LIMIT + 600
    "JOB_MAX_ATTEMPTS": "3",
    "JOB_STALL_SECONDS": "30",
    "WORKER_CONCURRENCY": str(_CPUS),
    "WORKER_MAX_MEMORY_PER_CHILD": "524288",  # KiB, Celery's unit: 512 MiB
    # MiB a job may add to its pool process's address space (RLIMIT_AS, docs/limits.md).
    "WORKER_MEMORY_LIMIT_MB": "256",
    # A cancelled job's process still running it after this is killed (worker/watchdog.py).
    "JOB_CANCEL_GRACE_SECONDS": "3",
    "WORKER_HEARTBEAT_SECONDS": "10",
    "WORKER_SOFT_SHUTDOWN_TIMEOUT": "2",
    "DELETE_INPUT_ON_FINISH": "true",
    "SWEEP_INTERVAL_SECONDS": "300",
    "MAX_WAIT_SECONDS": "60",
    "LEGACY_WAIT_SECONDS": "30",
    "API_WORKERS": str(max(2, _CPUS)),  # two at least: one recycling never empties the API
    "API_THREADS": "16",
    "API_TIMEOUT": "120",
    "API_GRACEFUL_TIMEOUT": "60",
    "API_KEEPALIVE": "5",
    # A kept-alive connection closes after this many requests, so that busy connections move
    # to the least busy process (bench/loadtest.py: 64 connections split 23/41 between two
    # processes had their p99 at 1,200 polls/s up to 268 ms; at 20 requests/s a connection
    # moves every 2.5 s). nginx's keepalive_requests is 1000, Apache's MaxKeepAliveRequests 100.
    "API_KEEPALIVE_REQUESTS": "50",
    "API_CLIENT_TIMEOUT": "30",  # a client silent this long is disconnected
    # A leak guard, not a routine: a recycled process boots again (~0.7 s of CPU); at 1000 it
    # did so every ~1.3 s under 1,500 polls/s (bench/loadtest.py). 100000: under 1% of CPU.
    "API_MAX_REQUESTS": "100000",
    "API_MAX_REQUESTS_JITTER": "10000",
    "FORWARDED_ALLOW_IPS": "127.0.0.1,::1",
    "FLOWER_PORT": "5555",
    "RATE_LIMIT_PER_MINUTE": "120",
    "MAX_ACTIVE_JOBS": "10",
    "WEBHOOK_SECRET": "",  # empty: derived from SECRET_KEY
    "WEBHOOK_RETRY_SCHEDULE": "5,30,120,600,1800",
    # Outgoing requests (webhooks, URL imports) may reach loopback and private addresses.
    "ALLOW_PRIVATE_ADDRESSES": "false",
    "WEBHOOK_ALLOW_PRIVATE": "",  # its old name, still read when ALLOW_PRIVATE_ADDRESSES is unset
    "WEBHOOK_ATTEMPT_TIMEOUT": "10",  # seconds for a whole attempt: connect, send, answer
    "WEBHOOK_MAX_PER_KEY": "4",  # deliveries of one API key at once (docs/limits.md)
    "WEBHOOK_CONCURRENCY": "16",  # threads of a webhooks worker (docs/limits.md)
    # Imports (input_url, worker/fetch.py; docs/limits.md, "URL imports").
    "INPUT_FETCH_TIMEOUT": "600",  # seconds for a whole fetch, redirects included
    "INPUT_FETCH_MIN_BYTES_PER_SECOND": "65536",  # over each 10 s window; 0: no minimum
    # GET /jobs/<id>/events (docs/limits.md, "Event streams").
    "EVENTS_MAX_SECONDS": "600",  # a stream ends after this; the client resumes (Last-Event-ID)
    "EVENTS_HEARTBEAT_SECONDS": "15",  # a comment on a quiet stream, under proxies' idle timeouts
    "EVENTS_MAX_STREAMS": "800",  # per API process (of its 1000 connections); 0: streams off
    "EVENTS_MAX_PER_KEY": "100",  # per API process and key
    "STORAGE_URL": "",  # empty: file:// under DATA_DIR
    "S3_ENDPOINT_URL": "",  # empty: AWS
    "S3_REGION": "us-east-1",
    "RESULT_DELIVERY": "proxy",
    "RESULT_URL_TTL_SECONDS": "300",
    # POST /uploads (s3:// only): its part URLs, and the quota slot it holds, last this long.
    "UPLOAD_URL_TTL_SECONDS": "3600",
    "METRICS_TOKEN": "",  # empty: GET /metrics is open in development, off elsewhere
    # The converter's limits (converter/limits.py; docs/limits.md, "The converter").
    "CONVERTER_MAX_ATTRIBUTES": "256",
    "CONVERTER_MAX_ATTRIBUTE_DEFAULTS": "256",
    "CONVERTER_MAX_ATTRIBUTE_DEFAULT_BYTES": "1024",
    "CONVERTER_MAX_NAMES": "10000",
    "CONVERTER_MAX_COLUMNS": "2000",
    "CONVERTER_MAX_VALUE_BYTES": str(16 * MiB),
    # A job's output may be at most OUTPUT_AMPLIFICATION × its input + OUTPUT_ALLOWANCE_BYTES.
    "OUTPUT_AMPLIFICATION": "20",
    "OUTPUT_ALLOWANCE_BYTES": str(64 * MiB),
    "REDIS_PASSWORD": "",  # empty: REDIS_URL's own password, if any
    # Redis with failover (jobs/connection.py): the primary is found through these Sentinels.
    "REDIS_SENTINELS": "",  # host:port,host:port,…; empty: REDIS_URL's host is the primary
    "REDIS_MASTER_NAME": "mymaster",  # the name the Sentinels monitor the primary under
    "REDIS_SENTINEL_PASSWORD": "",  # the Sentinels' own password (requirepass in sentinel.conf)
    # Replicas that must acknowledge a job before the API answers 202 (WAIT); empty: 1 with
    # REDIS_SENTINELS, else 0. docs/deployment.md, "Redis with failover".
    "REDIS_MIN_REPLICAS": "",
    "REDIS_REPLICA_TIMEOUT_MS": "1000",  # how long a submission waits for them (then 503)
    # An answer read slower than this (over API_CLIENT_TIMEOUT seconds of waiting) is cut:
    # 128 kbit/s, under any usable mobile link; docs/limits.md. 0: no floor (idle timeout only).
    "DOWNLOAD_MIN_BYTES_PER_SECOND": "16384",
    # An OTLP/HTTP collector (http://collector:4318): traces are sent to <it>/v1/traces.
    # Empty: tracing is off, nothing of OpenTelemetry is loaded (common/tracing.py).
    "OTEL_EXPORTER_OTLP_ENDPOINT": "",
}

# Secrets that may be read from a file instead: <NAME>_FILE names it (Docker and Kubernetes
# secrets are files). Each twin is a variable of its own, empty by default.
FILE_VARIABLES: tuple[str, ...] = ("REDIS_URL", "REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD",
                                   "SECRET_KEY", "FLOWER_BASIC_AUTH", "METRICS_TOKEN",
                                   "WEBHOOK_SECRET")
_COMMON_DEFAULTS.update({f"{name}_FILE": "" for name in FILE_VARIABLES})
# A secret file larger than this is no secret but a mistake (a wrong path): refused.
MAX_SECRET_FILE_BYTES = 64 * 1024

VARIABLES: tuple[str, ...] = ("DEPLOY_ENV", *_STAGE_DEFAULTS["development"], *_COMMON_DEFAULTS)
# Defaults computed on this machine (from its CPUs) rather than fixed.
COMPUTED_DEFAULTS = frozenset({"API_WORKERS", "WORKER_CONCURRENCY"})


def stage_defaults(stage: str) -> dict[str, str]:
    """Every variable's default under DEPLOY_ENV=stage; a variable missing here is required."""
    return {**_COMMON_DEFAULTS, **_STAGE_DEFAULTS[stage]}


class SettingsError(ValueError):
    """A variable with a bad or missing value."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable
        self.message = message


@dataclass(frozen=True)
class Settings:
    deploy_env: str
    debug: bool
    redis_url: str
    data_dir: Path
    log_level: str
    max_upload_bytes: int
    max_gzip_members: int
    max_form_parts: int
    storage_min_free_bytes: int
    upload_reservation_seconds: int
    result_ttl_seconds: int
    tombstone_ttl_seconds: int
    job_soft_time_limit: int
    job_time_limit: int
    broker_visibility_timeout: int
    job_max_attempts: int
    job_stall_seconds: int
    worker_concurrency: int
    worker_max_memory_per_child: int
    worker_memory_limit_mb: int
    job_cancel_grace_seconds: int
    worker_heartbeat_seconds: int
    worker_soft_shutdown_timeout: int
    delete_input_on_finish: bool
    sweep_interval_seconds: int
    max_wait_seconds: int
    legacy_wait_seconds: int
    api_bind: str
    api_workers: int
    api_threads: int
    api_timeout: int
    api_graceful_timeout: int
    api_keepalive: int
    api_keepalive_requests: int
    api_client_timeout: int
    api_max_requests: int
    api_max_requests_jitter: int
    forwarded_allow_ips: str
    flower_address: str
    flower_port: int
    flower_basic_auth: str
    auth_mode: str
    secret_key: str
    rate_limit_per_minute: int
    max_active_jobs: int
    webhook_secret: str
    webhook_retry_schedule: tuple[int, ...]
    allow_private_addresses: bool
    webhook_attempt_timeout: int = 10
    webhook_max_per_key: int = 4
    webhook_concurrency: int = 16
    input_fetch_timeout: int = 600
    input_fetch_min_bytes_per_second: int = 65536
    events_max_seconds: int = 600
    events_heartbeat_seconds: int = 15
    events_max_streams: int = 800
    events_max_per_key: int = 100
    storage_url: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    result_delivery: str = "proxy"
    result_url_ttl_seconds: int = 300
    upload_url_ttl_seconds: int = 3600
    metrics_token: str = ""
    converter_max_attributes: int = 256
    converter_max_attribute_defaults: int = 256
    converter_max_attribute_default_bytes: int = 1024
    converter_max_names: int = 10000
    converter_max_columns: int = 2000
    converter_max_value_bytes: int = 16 * MiB
    output_amplification: int = 20
    output_allowance_bytes: int = 64 * MiB
    download_min_bytes_per_second: int = 16384
    otel_exporter_otlp_endpoint: str = ""
    # ((host, port), …) of the Sentinels; empty: REDIS_URL names the primary itself.
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_master_name: str = "mymaster"
    redis_sentinel_password: str = ""
    redis_min_replicas: int = 0
    redis_replica_timeout_ms: int = 1000

    @property
    def is_production(self) -> bool:
        return self.deploy_env == "production"


class _Reader:
    """Reads one variable at a time from the environment, falling back to the stage's default."""

    def __init__(self, environ: Mapping[str, str], stage: str) -> None:
        self.environ = environ
        self.defaults = stage_defaults(stage)
        self.stage = stage

    def raw(self, name: str) -> str:
        value = self.environ.get(name)
        if (value is None or value.strip() == "") and name in FILE_VARIABLES:
            value = self.from_file(name)
        if value is None or value.strip() == "":
            if name not in self.defaults:
                also = f" (or {name}_FILE)" if name in FILE_VARIABLES else ""
                raise SettingsError(name, f"must be set{also} when DEPLOY_ENV={self.stage}")
            value = self.defaults[name]
        return value.strip()

    def from_file(self, name: str) -> str | None:
        """The content of <name>_FILE when it is set (a trailing newline dropped), else None.
        The message of a bad file names the variable and the path, never the content."""
        variable = f"{name}_FILE"
        path = (self.environ.get(variable) or "").strip()
        if not path:
            return None
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_SECRET_FILE_BYTES + 1)
        except OSError as exc:
            raise SettingsError(variable, f"cannot read {path}: {exc.strerror}") from None
        if len(data) > MAX_SECRET_FILE_BYTES:
            raise SettingsError(variable, f"{path} is larger than {MAX_SECRET_FILE_BYTES} bytes: "
                                "not a secret file")
        try:
            return data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise SettingsError(variable, f"{path} is not UTF-8 text") from None

    def integer(self, name: str, low: int, high: int | None = None) -> int:
        raw = self.raw(name)
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(name, f"must be an integer, not {raw!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"between {low} and {high}"
            raise SettingsError(name, f"must be {bounds}, not {value}")
        return value

    def boolean(self, name: str) -> bool:
        raw = self.raw(name).lower()
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise SettingsError(name, f"must be true or false, not {raw!r}")

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        raw = self.raw(name).upper() if name == "LOG_LEVEL" else self.raw(name).lower()
        if raw not in choices:
            raise SettingsError(name, f"must be one of {', '.join(choices)}, not {raw!r}")
        return raw


# REDIS_URL when it is not given beside REDIS_SENTINELS: no host (the Sentinels name it), db 0.
SENTINEL_REDIS_URL = "redis:///0"


def _redis_url(reader: _Reader) -> str:
    """REDIS_URL, with REDIS_PASSWORD put in when the URL carries no password of its own (a
    password written in the URL wins: it names that server's credentials)."""
    given = (reader.environ.get("REDIS_URL") or reader.environ.get("REDIS_URL_FILE") or "")
    if not given.strip() and (reader.environ.get("REDIS_SENTINELS") or "").strip():
        url = SENTINEL_REDIS_URL  # the Sentinels name the primary: database 0 on it
    else:
        url = reader.raw("REDIS_URL")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError("REDIS_URL", "must start with redis://, rediss:// or unix://")
    password = reader.raw("REDIS_PASSWORD")
    if not password:
        return url
    if any(char.isspace() or not char.isprintable() for char in password):
        raise SettingsError("REDIS_PASSWORD", "must be printable, without spaces")
    parts = urlsplit(url)
    if parts.password is not None:
        return url
    if parts.scheme == "unix":
        raise SettingsError("REDIS_PASSWORD", "cannot be added to a unix:// REDIS_URL: write it "
                            "in the URL (unix://:PASSWORD@/path/to/redis.sock)")
    user = quote(unquote(parts.username), safe="") if parts.username else ""
    netloc = f"{user}:{quote(password, safe='')}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc))


def _sentinels(reader: _Reader) -> tuple[tuple[str, int], ...]:
    """REDIS_SENTINELS: `host:port` pairs, comma-separated (an IPv6 host in brackets)."""
    raw = reader.raw("REDIS_SENTINELS")
    found: list[tuple[str, int]] = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        host, sep, port = item.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not (sep and host and _digits(port) and 0 < int(port) < 65536) or any(
                char.isspace() or char in "/@[]" for char in host):
            raise SettingsError("REDIS_SENTINELS", "must be host:port[,host:port…], not "
                                f"{raw!r}")
        found.append((host, int(port)))
    return tuple(found)


def _failover(reader: _Reader, redis_url: str) -> dict[str, object]:
    """The Sentinel settings, checked together: with REDIS_SENTINELS, REDIS_URL gives the
    primary's database and password but not its address, so it must be a redis:// URL."""
    sentinels = _sentinels(reader)
    name = reader.raw("REDIS_MASTER_NAME")
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,128}", name):
        raise SettingsError("REDIS_MASTER_NAME", "must be letters, digits and ._- only, not "
                            f"{name!r}")
    password = reader.raw("REDIS_SENTINEL_PASSWORD")
    if any(char.isspace() or not char.isprintable() for char in password):
        raise SettingsError("REDIS_SENTINEL_PASSWORD", "must be printable, without spaces")
    if sentinels and not redis_url.startswith("redis://"):
        raise SettingsError("REDIS_URL", "must be a redis:// URL with REDIS_SENTINELS (its "
                            "database and password are used, its host is not; rediss:// and "
                            "unix:// are not supported through Sentinels)")
    explicit = (reader.environ.get("REDIS_MIN_REPLICAS") or "").strip()
    replicas = reader.integer("REDIS_MIN_REPLICAS", 0, 16) if explicit else int(bool(sentinels))
    if sentinels and replicas == 0 and reader.stage == "production":
        raise SettingsError("REDIS_MIN_REPLICAS", "must be at least 1 with REDIS_SENTINELS when "
                            "DEPLOY_ENV=production (without a replica's acknowledgement, a "
                            "failover loses jobs the API accepted)")
    return {"redis_sentinels": sentinels, "redis_master_name": name,
            "redis_sentinel_password": password, "redis_min_replicas": replicas,
            "redis_replica_timeout_ms": reader.integer("REDIS_REPLICA_TIMEOUT_MS", 1, 60000)}


def _digits(text: str) -> bool:
    """ASCII digits only: `str.isdigit` is also true for '²', which `int` refuses."""
    return text.isascii() and text.isdigit()


def _bind(reader: _Reader) -> str:
    bind = reader.raw("API_BIND")
    host, sep, port = bind.rpartition(":")
    if not bind.startswith("unix:") and (not sep or not host or not _digits(port)):
        raise SettingsError("API_BIND", f"must look like HOST:PORT or unix:PATH, not {bind!r}")
    return bind


# Refused as Flower passwords in production, beside anything shorter than MIN_PASSWORD_LENGTH
# or equal to its user name.
WEAK_PASSWORDS = frozenset({"admin", "password", "secret", "changeme", "change-me", "flower",
                            "celery", "test", "guest", "letmein", "qwerty", "123456",
                            "12345678", "123456789", "1234567890", "password123"})
MIN_PASSWORD_LENGTH = 12


def _basic_auth(reader: _Reader, production_flower: bool) -> str:
    value = reader.raw("FLOWER_BASIC_AUTH")
    if not value:
        if production_flower:
            raise SettingsError("FLOWER_BASIC_AUTH", "must be set when DEPLOY_ENV=production")
        return ""
    for pair in value.split(","):
        user, sep, password = pair.partition(":")
        if not (sep and user and password):
            raise SettingsError("FLOWER_BASIC_AUTH", "must be user:password[,user:password…]")
        weak = (len(password) < MIN_PASSWORD_LENGTH or password.lower() in WEAK_PASSWORDS
                or password == user)
        if production_flower and weak:
            raise SettingsError(
                "FLOWER_BASIC_AUTH",
                f"the password of user {user!r} is too weak for DEPLOY_ENV=production: use "
                f"{MIN_PASSWORD_LENGTH} characters or more, neither the user name nor a common "
                "password")
    return value


AUTH_MODES = ("api_key", "none")
MIN_SECRET_KEY_LENGTH = 32


def _auth_mode(reader: _Reader) -> str:
    mode = reader.choice("AUTH_MODE", AUTH_MODES)
    if mode == "none" and reader.stage == "production":
        raise SettingsError("AUTH_MODE", "must be api_key when DEPLOY_ENV=production "
                            "(none lets anyone submit and read every job)")
    return mode


def _secret_key(reader: _Reader) -> str:
    """Webhook secrets are derived from it: outside development a publicly known or short key
    would let anyone sign webhooks as the service. The built-in one is refused by value (it is
    in this file), whatever its length."""
    key = reader.raw("SECRET_KEY")
    if reader.stage != "development" and (
            len(key) < MIN_SECRET_KEY_LENGTH or key == INSECURE_SECRET_KEY):
        raise SettingsError("SECRET_KEY", f"must be {MIN_SECRET_KEY_LENGTH} random characters "
                            f"or more, not the built-in development key, when "
                            f"DEPLOY_ENV={reader.stage} (e.g. `openssl rand -hex 32`; docker "
                            "compose generates one: SECRET_KEY_FILE)")
    return key


def _webhook_secret(reader: _Reader, secret_key: str) -> str:
    """AUTH_MODE=none signs webhooks with this (Standard Webhooks `whsec_<base64>`)."""
    value = reader.raw("WEBHOOK_SECRET")
    if not value:
        return webhook_secret(secret_key, "")
    body = value.removeprefix("whsec_")
    try:
        raw = base64.b64decode(body, validate=True)
    except ValueError:
        raw = b""
    if not value.startswith("whsec_") or len(raw) < 24:
        raise SettingsError("WEBHOOK_SECRET", "must be whsec_ followed by base64 of 24 random "
                            "bytes or more")
    return value


def _retry_schedule(reader: _Reader, visibility: int) -> tuple[int, ...]:
    """A retry waits in the broker as a delayed message: past the visibility timeout Redis would
    hand it out twice, so every delay stays below it (a value set too high is refused; the
    default is capped)."""
    raw = reader.raw("WEBHOOK_RETRY_SCHEDULE")
    parts = [part.strip() for part in raw.split(",")]
    if not (reader.environ.get("WEBHOOK_RETRY_SCHEDULE") or "").strip() and all(
            _digits(part) for part in parts):
        # The default, under a visibility timeout lowered with JOB_TIME_LIMIT: capped below it.
        return tuple(min(int(part), visibility - 1) for part in parts)
    if not all(_digits(part) for part in parts) or not 1 <= len(parts) <= 20 or any(
            int(part) >= visibility for part in parts):
        raise SettingsError("WEBHOOK_RETRY_SCHEDULE", "must be 1 to 20 comma-separated seconds, "
                            f"each below BROKER_VISIBILITY_TIMEOUT ({visibility}), not {raw!r}")
    return tuple(int(part) for part in parts)


def _allow_private(reader: _Reader) -> bool:
    """ALLOW_PRIVATE_ADDRESSES, or WEBHOOK_ALLOW_PRIVATE (its name before URL imports) when only
    that one is set."""
    name = "ALLOW_PRIVATE_ADDRESSES"
    if not (reader.environ.get(name) or "").strip() and (
            reader.environ.get("WEBHOOK_ALLOW_PRIVATE") or "").strip():
        name = "WEBHOOK_ALLOW_PRIVATE"
    allowed = reader.boolean(name)
    if allowed and reader.stage == "production":
        raise SettingsError(name, "must be false when DEPLOY_ENV=production (webhooks and "
                            "imports from private addresses let clients reach the internal "
                            "network)")
    return allowed


def _fetch_timeout(reader: _Reader, soft_time_limit: int) -> int:
    """A fetch runs inside its job's time: it ends before the job's soft time limit (a value set
    past it is refused; the default, under a lowered JOB_SOFT_TIME_LIMIT, is capped)."""
    ceiling = max(1, soft_time_limit - 1)
    if not (reader.environ.get("INPUT_FETCH_TIMEOUT") or "").strip():
        return min(int(reader.defaults["INPUT_FETCH_TIMEOUT"]), ceiling)
    return reader.integer("INPUT_FETCH_TIMEOUT", 1, ceiling)


def _storage_url(reader: _Reader, data_dir: Path) -> str:
    """`file:///absolute/path` or `s3://bucket[/prefix]`; empty means file:// under DATA_DIR."""
    raw = reader.raw("STORAGE_URL")
    if not raw:
        return data_dir.as_uri()
    scheme, sep, rest = raw.partition("://")
    scheme = scheme.lower()
    if scheme == "file" and sep and rest.startswith("/"):
        return Path(unquote(rest)).as_uri()
    if scheme == "s3" and sep:
        bucket, _, prefix = rest.partition("/")
        if _BUCKET.fullmatch(bucket):
            prefix = prefix.strip("/")
            return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        raise SettingsError("STORAGE_URL", f"the bucket name {bucket!r} is not a valid S3 bucket "
                            "name (3 to 63 lowercase letters, digits, dots and hyphens)")
    raise SettingsError("STORAGE_URL", "must be file:///absolute/path or s3://bucket[/prefix], "
                        f"not {raw!r}")


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


RESULT_DELIVERIES = ("proxy", "redirect")


def _result_delivery(reader: _Reader, storage_url: str) -> str:
    delivery = reader.choice("RESULT_DELIVERY", RESULT_DELIVERIES)
    if delivery == "redirect" and not storage_url.startswith("s3://"):
        raise SettingsError("RESULT_DELIVERY", "redirect needs STORAGE_URL=s3://... (a "
                            "presigned URL of the object store); use proxy with file://")
    return delivery


def _endpoint_url(reader: _Reader) -> str:
    url = reader.raw("S3_ENDPOINT_URL")
    if url and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        raise SettingsError("S3_ENDPOINT_URL", f"must be an http:// or https:// URL, not {url!r}")
    return url.rstrip("/")


def _otlp_endpoint(reader: _Reader) -> str:
    """The collector's base URL, as OpenTelemetry's own variable means it (OTLP/HTTP: traces go
    to <it>/v1/traces); empty: tracing off."""
    url = reader.raw("OTEL_EXPORTER_OTLP_ENDPOINT")
    if url and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", url):
        raise SettingsError("OTEL_EXPORTER_OTLP_ENDPOINT", "must be an http:// or https:// URL "
                            f"(an OTLP/HTTP collector, e.g. http://collector:4318), not {url!r}")
    return url.rstrip("/")


def _metrics_token(reader: _Reader) -> str:
    """The bearer token GET /metrics asks for (api/metrics.py). Production refuses a short one:
    the figures are aggregates, but they show a business's volume and errors to whoever asks."""
    token = reader.raw("METRICS_TOKEN")
    if token and not re.fullmatch(r"[A-Za-z0-9._~+/=-]+", token):
        raise SettingsError("METRICS_TOKEN", "must be letters, digits and ._~+/=- only (it is "
                            "sent as `Authorization: Bearer <token>`)")
    if token and reader.stage == "production" and len(token) < MIN_SECRET_KEY_LENGTH:
        raise SettingsError("METRICS_TOKEN", f"must be {MIN_SECRET_KEY_LENGTH} random characters "
                            "or more when DEPLOY_ENV=production (e.g. `openssl rand -hex 32`)")
    return token


def _debug(reader: _Reader) -> bool:
    debug = reader.boolean("DEBUG")
    if debug and reader.stage != "development":
        raise SettingsError("DEBUG", f"must be false when DEPLOY_ENV={reader.stage} "
                            "(debug is for development only)")
    return debug


def _log_level(reader: _Reader, debug: bool) -> str:
    """LOG_LEVEL when set; otherwise DEBUG under DEBUG=true, else the stage's default."""
    if debug and not (reader.environ.get("LOG_LEVEL") or "").strip():
        return "DEBUG"
    return reader.choice("LOG_LEVEL", LOG_LEVELS)


def load_settings(
    environ: Mapping[str, str] | None = None, *, service: str | None = None
) -> Settings:
    """Parse and validate the environment. Raises SettingsError naming the first bad variable.

    `service` adds that process's own requirements (Flower in production needs credentials).
    """
    environ = os.environ if environ is None else environ
    stage = (environ.get("DEPLOY_ENV") or "development").strip().lower()
    if stage not in STAGES:
        raise SettingsError("DEPLOY_ENV", f"must be one of {', '.join(STAGES)}, not {stage!r}")
    r = _Reader(environ, stage)
    debug = _debug(r)

    soft = r.integer("JOB_SOFT_TIME_LIMIT", 1)
    hard = r.integer("JOB_TIME_LIMIT", 2)
    if soft >= hard:
        raise SettingsError("JOB_SOFT_TIME_LIMIT", f"must be below JOB_TIME_LIMIT ({hard})")
    # The broker re-delivers an unacknowledged job after this long: it must outlast the longest
    # job, or a job still running would be handed to a second worker.
    visibility = (
        r.integer("BROKER_VISIBILITY_TIMEOUT", 1)
        if r.raw("BROKER_VISIBILITY_TIMEOUT")
        else hard + 600
    )
    if visibility <= hard:
        raise SettingsError("BROKER_VISIBILITY_TIMEOUT", f"must exceed JOB_TIME_LIMIT ({hard})")
    # A running job is lost when neither its run's progress nor its worker's heartbeat has been
    # seen for JOB_STALL_SECONDS: two heartbeats must fit in that window.
    heartbeat = r.integer("WORKER_HEARTBEAT_SECONDS", 1, 300)
    stall = r.integer("JOB_STALL_SECONDS", 5)
    if stall < 2 * heartbeat + 1:
        raise SettingsError("JOB_STALL_SECONDS", "must exceed twice WORKER_HEARTBEAT_SECONDS "
                            f"({heartbeat})")

    redis_url = _redis_url(r)
    data_dir = Path(r.raw("DATA_DIR")).expanduser().absolute()
    return Settings(
        deploy_env=stage,
        debug=debug,
        redis_url=redis_url,
        data_dir=data_dir,
        log_level=_log_level(r, debug),
        max_upload_bytes=r.integer("MAX_UPLOAD_BYTES", 1),
        max_gzip_members=r.integer("MAX_GZIP_MEMBERS", 1, 10_000_000),
        max_form_parts=r.integer("MAX_FORM_PARTS", 1, 100_000),
        storage_min_free_bytes=r.integer("STORAGE_MIN_FREE_BYTES", 0),
        upload_reservation_seconds=r.integer("UPLOAD_RESERVATION_SECONDS", 5, 3600),
        result_ttl_seconds=r.integer("RESULT_TTL_SECONDS", 60),
        tombstone_ttl_seconds=r.integer("TOMBSTONE_TTL_SECONDS", 60),
        job_soft_time_limit=soft,
        job_time_limit=hard,
        broker_visibility_timeout=visibility,
        job_max_attempts=r.integer("JOB_MAX_ATTEMPTS", 1, 100),
        job_stall_seconds=stall,
        worker_concurrency=r.integer("WORKER_CONCURRENCY", 1, 64),
        worker_max_memory_per_child=r.integer("WORKER_MAX_MEMORY_PER_CHILD", 65536),
        worker_memory_limit_mb=r.integer("WORKER_MEMORY_LIMIT_MB", 0, 1024 * 1024),
        job_cancel_grace_seconds=r.integer("JOB_CANCEL_GRACE_SECONDS", 1, 3600),
        worker_heartbeat_seconds=heartbeat,
        worker_soft_shutdown_timeout=r.integer("WORKER_SOFT_SHUTDOWN_TIMEOUT", 0, 3600),
        delete_input_on_finish=r.boolean("DELETE_INPUT_ON_FINISH"),
        sweep_interval_seconds=r.integer("SWEEP_INTERVAL_SECONDS", 5),
        max_wait_seconds=r.integer("MAX_WAIT_SECONDS", 0, 60),
        legacy_wait_seconds=r.integer("LEGACY_WAIT_SECONDS", 0, 60),
        api_bind=_bind(r),
        api_workers=r.integer("API_WORKERS", 1, 64),
        api_threads=r.integer("API_THREADS", 1, 256),
        api_timeout=r.integer("API_TIMEOUT", 10),
        api_graceful_timeout=r.integer("API_GRACEFUL_TIMEOUT", 1),
        api_keepalive=r.integer("API_KEEPALIVE", 1, 300),
        api_keepalive_requests=r.integer("API_KEEPALIVE_REQUESTS", 0),
        api_client_timeout=r.integer("API_CLIENT_TIMEOUT", 1, 3600),
        api_max_requests=r.integer("API_MAX_REQUESTS", 0),
        api_max_requests_jitter=r.integer("API_MAX_REQUESTS_JITTER", 0),
        forwarded_allow_ips=r.raw("FORWARDED_ALLOW_IPS"),
        flower_address=r.raw("FLOWER_ADDRESS"),
        flower_port=r.integer("FLOWER_PORT", 1, 65535),
        flower_basic_auth=_basic_auth(r, production_flower=service == "flower"
                                      and stage == "production"),
        auth_mode=_auth_mode(r),
        secret_key=(secret_key := _secret_key(r)),
        rate_limit_per_minute=r.integer("RATE_LIMIT_PER_MINUTE", 1, 100000),
        max_active_jobs=r.integer("MAX_ACTIVE_JOBS", 1, 100000),
        webhook_secret=_webhook_secret(r, secret_key),
        webhook_retry_schedule=_retry_schedule(r, visibility),
        allow_private_addresses=_allow_private(r),
        webhook_attempt_timeout=r.integer("WEBHOOK_ATTEMPT_TIMEOUT", 1, 120),
        webhook_max_per_key=r.integer("WEBHOOK_MAX_PER_KEY", 1, 1000),
        webhook_concurrency=r.integer("WEBHOOK_CONCURRENCY", 1, 256),
        input_fetch_timeout=_fetch_timeout(r, soft),
        input_fetch_min_bytes_per_second=r.integer("INPUT_FETCH_MIN_BYTES_PER_SECOND", 0),
        events_max_seconds=r.integer("EVENTS_MAX_SECONDS", 5, 86400),
        events_heartbeat_seconds=r.integer("EVENTS_HEARTBEAT_SECONDS", 1, 300),
        events_max_streams=r.integer("EVENTS_MAX_STREAMS", 0, 100000),
        events_max_per_key=r.integer("EVENTS_MAX_PER_KEY", 1, 100000),
        storage_url=(storage_url := _storage_url(r, data_dir)),
        s3_endpoint_url=_endpoint_url(r),
        s3_region=r.raw("S3_REGION"),
        result_delivery=_result_delivery(r, storage_url),
        result_url_ttl_seconds=r.integer("RESULT_URL_TTL_SECONDS", 1, 7 * 86400),
        upload_url_ttl_seconds=r.integer("UPLOAD_URL_TTL_SECONDS", 1, 7 * 86400),
        metrics_token=_metrics_token(r),
        converter_max_attributes=r.integer("CONVERTER_MAX_ATTRIBUTES", 1, 100000),
        converter_max_attribute_defaults=r.integer("CONVERTER_MAX_ATTRIBUTE_DEFAULTS", 1),
        converter_max_attribute_default_bytes=r.integer(
            "CONVERTER_MAX_ATTRIBUTE_DEFAULT_BYTES", 1),
        converter_max_names=r.integer("CONVERTER_MAX_NAMES", 1),
        converter_max_columns=r.integer("CONVERTER_MAX_COLUMNS", 1),
        converter_max_value_bytes=r.integer("CONVERTER_MAX_VALUE_BYTES", 1024),
        output_amplification=r.integer("OUTPUT_AMPLIFICATION", 1),
        output_allowance_bytes=r.integer("OUTPUT_ALLOWANCE_BYTES", 0),
        download_min_bytes_per_second=r.integer("DOWNLOAD_MIN_BYTES_PER_SECOND", 0, 1 << 30),
        otel_exporter_otlp_endpoint=_otlp_endpoint(r),
        **_failover(r, redis_url),  # type: ignore[arg-type]
    )


def settings_or_exit(service: str, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings for a process starting up; a bad value ends the process with a JSON line."""
    try:
        return load_settings(environ, service=service)
    except SettingsError as exc:
        line = json_line(service, "CRITICAL", "common.settings",
                         f"invalid configuration: {exc}", variable=exc.variable)
        print(line, file=sys.stderr, flush=True)
        raise SystemExit(2) from None
