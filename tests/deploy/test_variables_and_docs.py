"""The variables the code reads, .env.example, docs/deployment.md and docker-compose.yml name the
same set; the doc's service table and compose commands are the ones compose (and these tests)
run; the README points at the doc."""

from __future__ import annotations

import re
import shlex

import pytest
from stackfiles import (
    APP_SERVICES,
    DEPLOYMENT_DOC,
    OTEL_SDK_VARIABLES,
    S3_CREDENTIALS,
    compose,
    doc_service_table,
    doc_shell_lines,
    env_example,
    interpolate,
)

from common.settings import COMPUTED_DEFAULTS, STAGES, VARIABLES, stage_defaults
from testkit import REPO

CODE_DIRS = ("api", "common", "worker", "converter", "scripts")
# The process environment only (a WSGI `environ.get("PATH_INFO")` is no variable).
_READ = re.compile(r"""(?:os\.environ(?:\.get|\.pop|\.setdefault)?|os\.getenv)"""
                   r"""[(\[]\s*["']([A-Z][A-Z0-9_]*)["']""")


def variables_read_by_code() -> set[str]:
    files = [p for d in CODE_DIRS for p in (REPO / d).rglob("*.py")]
    files.append(REPO / "gunicorn_config.py")
    found = {name for path in files for name in _READ.findall(path.read_text())}
    return found | set(VARIABLES)


def test_the_scan_finds_what_the_code_reads():
    assert {"FLOWER_BASIC_AUTH", "FLOWER_PORT", "DEPLOY_ENV"} <= variables_read_by_code()
    assert _READ.findall('os.environ.get("X_Y")\nos.environ["Z"]') == ["X_Y", "Z"]


def test_env_example_lists_exactly_the_variables_the_code_reads():
    assert sorted(env_example()) == sorted(variables_read_by_code())


def test_env_example_shows_the_development_defaults():
    defaults = {"DEPLOY_ENV": STAGES[0], **stage_defaults(STAGES[0])}
    for name, shown in env_example().items():
        expected = "" if name in COMPUTED_DEFAULTS else defaults.get(name, "")
        assert shown == expected, f"{name}: .env.example shows {shown!r}, default {expected!r}"


def test_env_example_changes_nothing_until_a_line_is_uncommented():
    lines = (REPO / ".env.example").read_text().splitlines()
    assert all(line.startswith("#") or not line.strip() for line in lines)


def test_deployment_doc_describes_every_variable():
    doc = DEPLOYMENT_DOC.read_text()
    missing = [name for name in sorted(variables_read_by_code()) if f"`{name}`" not in doc]
    assert missing == []


def test_compose_passes_every_variable_and_no_other():
    for service in APP_SERVICES:
        assert set(compose()["services"][service]["environment"]) == {
            *VARIABLES, *S3_CREDENTIALS, *OTEL_SDK_VARIABLES}


def test_doc_service_table_is_what_compose_runs():
    table = doc_service_table()
    services = compose()["services"]
    assert set(table) == set(services)
    for name, (command, healthcheck) in table.items():
        # As it runs ($$ is a $); a one-shot (`secrets`) has no healthcheck: `-`.
        assert command == [interpolate(arg, {}) for arg in services[name]["command"]], name
        check = services[name].get("healthcheck", {"test": ["CMD", "-"]})["test"][1:]
        assert healthcheck == [interpolate(arg, {}) for arg in check], name


def compose_commands() -> list[list[str]]:
    return [shlex.split(line, comments=True) for line in doc_shell_lines()
            if line.startswith("docker compose")]


def test_doc_compose_commands_name_real_services_and_scale_what_scales():
    commands = compose_commands()
    assert ["docker", "compose", "up", "-d", "--build"] in commands
    services = compose()["services"]
    scaled = set()
    for argv in commands:
        for index, arg in enumerate(argv):
            if arg == "--scale":
                name, count = argv[index + 1].split("=")
                assert count.isdigit() and name in services
                assert "container_name" not in services[name] and "ports" not in services[name]
                scaled.add(name)
        own = argv[3:argv.index("|")] if "|" in argv else argv[3:]
        if argv[2] in ("logs", "restart", "stop", "start", "ps", "build"):
            named = [a for a in own if not a.startswith("-")]
            assert set(named) <= set(services), argv
    assert scaled == {"worker"}


@pytest.mark.parametrize("needle", ["docker compose up", "docs/deployment.md"])
def test_readme_points_at_compose_and_the_doc(needle):
    assert needle in (REPO / "README.md").read_text()
