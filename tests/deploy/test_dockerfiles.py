"""Dockerfile.api and Dockerfile.worker: hadolint-clean (an ignore only with its reason written
above it), multi-stage with the compiler left behind, non-root, health-checked, exec-form
commands; the API image provably without lxml; a build context without secrets."""

from __future__ import annotations

import re
import subprocess

import pytest
from stackfiles import DOCKERFILES, image_cmd, image_healthcheck, repo_path, stages

from testkit import BIN

PARAMS = pytest.mark.parametrize("image", sorted(DOCKERFILES))


def test_hadolint_finds_nothing():
    done = subprocess.run([str(BIN / "hadolint"), "--failure-threshold", "style",
                           *map(str, DOCKERFILES.values())],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "", done.stdout + done.stderr


def test_hadolint_does_fail_on_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install flask\nCMD gunicorn app\n")
    done = subprocess.run([str(BIN / "hadolint"), str(bad)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0 and "DL3006" in done.stdout


@PARAMS
def test_every_hadolint_ignore_says_why(image):
    lines = DOCKERFILES[image].read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            reason = lines[number - 1].strip()
            assert reason.startswith("#") and len(reason) > 20, (
                f"{image}:{number + 1}: say why above the ignore")


@PARAMS
def test_multi_stage_from_python_slim_with_the_compiler_left_behind(image):
    build, runtime = stages(DOCKERFILES[image])
    assert build[0] == ("FROM", "python:3.11-slim AS build")
    assert runtime[0] == ("FROM", "python:3.11-slim AS runtime")
    build_text = " ".join(args for _, args in build)
    assert "gcc" in build_text and "pip wheel" in build_text
    runtime_text = " ".join(args for _, args in runtime)
    assert not re.search(r"apt-get|gcc|pip (install|wheel)|build-essential", runtime_text)
    assert ("COPY", "--from=build /opt/venv /opt/venv") in runtime


@PARAMS
def test_runtime_runs_as_a_numeric_non_root_user(image):
    runtime = stages(DOCKERFILES[image])[-1]
    [user] = [args for name, args in runtime if name == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    # The user exists in the image and owns the data volume's mount point.
    assert any(name == "RUN" and f"--uid {uid}" in args and "chown" in args and "/data" in args
               for name, args in runtime)


@PARAMS
def test_healthcheck_stopsignal_and_exec_form_cmd(image):
    runtime = dict(stages(DOCKERFILES[image])[-1])
    assert runtime["STOPSIGNAL"] == "SIGTERM"
    assert image_cmd(DOCKERFILES[image])[0] in ("gunicorn", "celery")
    assert image_healthcheck(DOCKERFILES[image])[:2] == ["python", "-m"]
    assert re.search(r"--interval=\d+s --timeout=\d+s", runtime["HEALTHCHECK"])


def test_api_image_installs_no_lxml():
    build = " ".join(" ".join(args for _, args in stages(DOCKERFILES["api"])[0]).split())
    # The api lock alone (no base dependencies: tests/deploy/test_lock.py checks it has no lxml).
    assert ("--python /opt/venv/bin/python install --require-hashes --only-binary :all: "
            "-r requirements/api.txt") in build
    assert "--no-deps /wheels/its_convert_xml-" in build
    # The build itself fails when lxml got in anyway.
    assert 'sys.exit(importlib.util.find_spec("lxml") is not None)' in build


def test_build_context_is_an_allow_list_without_secrets():
    patterns = [line.strip() for line in repo_path(".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert not {".env", ".git", ".venv", "var", "tests"} & allowed
    for image, dockerfile in DOCKERFILES.items():
        for name, args in (i for stage in stages(dockerfile) for i in stage):
            if name == "COPY" and not args.startswith("--from"):
                for source in args.split()[:-1]:
                    assert any(source.rstrip("/") == folder or source.startswith(f"{folder}/")
                               for folder in allowed), f"{image}: COPY {source} is ignored"


def test_every_package_of_the_wheel_is_copied_into_both_images():
    """The wheel is built from what the Dockerfile copies: a package left out (jobs/ was, once)
    builds a wheel without it, and the image fails at its first import."""
    import tomllib

    include = tomllib.loads(repo_path("pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    for image, dockerfile in DOCKERFILES.items():
        copied = {args.split()[0].rstrip("/") for stage in stages(dockerfile)
                  for name, args in stage if name == "COPY" and not args.startswith("--from")}
        assert packages <= copied, f"{image}: {sorted(packages - copied)} not copied"
