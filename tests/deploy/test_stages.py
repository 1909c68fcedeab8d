"""DEPLOY_ENV stages: each stage's defaults, production refusing insecure values at start (in a
real process, with a message naming the variable), and CPU defaults that follow a container's
limit."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from common.cpus import available_cpus
from common.settings import (
    INSECURE_SECRET_KEY,
    SettingsError,
    load_settings,
    stage_defaults,
)
from testkit import BIN, REPO, commands

PRODUCTION = {"DEPLOY_ENV": "production", "REDIS_URL": "redis://redis:6379/0",
              "DATA_DIR": "/data", "SECRET_KEY": "9f2c4e1a7b3d5f6081a2c3e4f5061728"}
STRONG = "ops:correct-horse-battery-staple"


@pytest.mark.parametrize(("stage", "bind", "data_dir", "redis_url"), [
    ("development", "127.0.0.1:8000", "var/data", "redis://127.0.0.1:6379/0"),
    ("staging", "0.0.0.0:5000", "/data", None),
    ("production", "0.0.0.0:5000", None, None),
])
def test_each_stage_defaults(stage, bind, data_dir, redis_url):
    defaults = stage_defaults(stage)
    assert defaults["API_BIND"] == bind
    assert defaults.get("DATA_DIR") == data_dir
    assert defaults.get("REDIS_URL") == redis_url  # None: required in that stage
    assert defaults["LOG_LEVEL"] == "INFO" and defaults["DEBUG"] == "false"
    environ = {**PRODUCTION, "DEPLOY_ENV": stage}
    settings = load_settings(environ)
    assert settings.deploy_env == stage and settings.debug is False
    assert settings.log_level == "INFO" and settings.api_bind == bind


def test_debug_only_in_development():
    settings = load_settings({"DEBUG": "true"})
    assert settings.debug and settings.log_level == "DEBUG"  # unless LOG_LEVEL says otherwise
    assert load_settings({"DEBUG": "true", "LOG_LEVEL": "warning"}).log_level == "WARNING"
    for stage in ("staging", "production"):
        with pytest.raises(SettingsError) as caught:
            load_settings({**PRODUCTION, "DEPLOY_ENV": stage, "DEBUG": "1"})
        assert caught.value.variable == "DEBUG" and "development only" in str(caught.value)


@pytest.mark.parametrize("credentials", [
    "admin:admin", "admin:secret", "ops:short", "ops:PASSWORD", "ops:changeme",
    "flowerflowerflower:flowerflowerflower", f"{STRONG},guest:guest",
])
def test_production_flower_refuses_weak_credentials(credentials):
    with pytest.raises(SettingsError) as caught:
        load_settings({**PRODUCTION, "FLOWER_BASIC_AUTH": credentials}, service="flower")
    assert caught.value.variable == "FLOWER_BASIC_AUTH"
    assert "too weak" in caught.value.message
    user, password = credentials.split(",")[-1].split(":")
    assert f"{user}:{password}" not in caught.value.message  # never echo a secret
    if password != user:
        assert password not in caught.value.message


def test_weak_credentials_pass_outside_production_and_strong_ones_in_production():
    assert load_settings({"FLOWER_BASIC_AUTH": "admin:admin"}, service="flower")
    settings = load_settings({**PRODUCTION, "FLOWER_BASIC_AUTH": STRONG}, service="flower")
    assert settings.flower_basic_auth == STRONG
    # The API and the workers do not use Flower's credentials and start without them.
    assert load_settings(PRODUCTION, service="api").is_production


def critical_line(done: subprocess.CompletedProcess) -> dict:
    lines = [json.loads(line) for line in (done.stdout + done.stderr).splitlines()
             if line.startswith("{")]
    [line] = [line for line in lines if line["level"] == "CRITICAL"]
    return line


@pytest.mark.parametrize(("argv", "environ", "variable"), [
    ([sys.executable, "-m", "worker.flower"],
     {**PRODUCTION, "FLOWER_BASIC_AUTH": "admin:admin"}, "FLOWER_BASIC_AUTH"),
    ([sys.executable, "-m", "worker.flower"], PRODUCTION, "FLOWER_BASIC_AUTH"),
    (commands.gunicorn(),
     {**PRODUCTION, "DEBUG": "true"}, "DEBUG"),
    (commands.gunicorn(),  # the built-in development key is public: refused in staging
     {**PRODUCTION, "DEPLOY_ENV": "staging", "SECRET_KEY": INSECURE_SECRET_KEY}, "SECRET_KEY"),
    ([str(BIN / "celery"), "--quiet", "-A", "worker.app", "worker"],  # a key file not there
     {**PRODUCTION, "SECRET_KEY": "", "SECRET_KEY_FILE": "/nonexistent/secret-key"},
     "SECRET_KEY_FILE"),
    ([str(BIN / "celery"), "--quiet", "-A", "worker.app", "worker"],
     {"DEPLOY_ENV": "production", "DATA_DIR": "/data"}, "REDIS_URL"),
    ([str(BIN / "celery"), "--quiet", "-A", "worker.app", "worker"],
     {"WORKER_CONCURRENCY": "lots"}, "WORKER_CONCURRENCY"),
])
def test_a_process_refuses_to_start_and_names_the_variable(argv, environ, variable):
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": "/tmp", **environ}
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    line = critical_line(done)
    assert line["variable"] == variable and variable in line["message"]
    assert line["message"].startswith("invalid configuration: ")


def test_cpu_defaults_follow_the_cgroup_quota(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # --cpus=1.5
    assert available_cpus(tmp_path) == min(2, available_cpus(tmp_path / "none"))
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # --cpus=0.5: still one
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) == available_cpus(tmp_path / "none") >= 1


def test_cpu_defaults_read_cgroup_v1_too(tmp_path):
    v1 = tmp_path / "cpu,cpuacct"
    v1.mkdir()
    (v1 / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(tmp_path) == 1
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert available_cpus(tmp_path) == available_cpus(tmp_path / "none")
