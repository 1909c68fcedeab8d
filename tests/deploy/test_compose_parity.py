"""The stack of docker-compose.yml, run natively: each application service's exact `command`
with the environment its image and the compose file give it (a bare `docker compose up`: no .env),
against a real redis-server. Only what a container network provides is rewritten: service host
names become 127.0.0.1, ports become free ones, DATA_DIR a temporary folder (the shared volume).
Every service must turn healthy by its own healthcheck command, and a job submitted to the API
must succeed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from stackfiles import (
    APP_SERVICES,
    DOCKERFILES,
    compose,
    compose_redis,
    generate_secrets,
    image_cmd,
    image_env,
    image_healthcheck,
    service_environment,
    with_secrets_at,
)

from testkit import BIN, REPO
from testkit.service import Service
from testkit.waiting import free_port, wait_for

IMAGE_OF = {"api": "api", "worker": "worker", "webhooks": "worker", "beat": "worker",
            "flower": "worker"}
ORDERS = (b'<?xml version="1.0"?>\n<orders><order id="1"><item>tea</item></order>'
          b'<order id="2"><item>milk</item><item>sugar</item></order></orders>\n')


def container_env(service: str, redis_port: int, api_port: int, flower_port: int,
                  data_dir: str, secrets: Path) -> dict[str, str]:
    """The image's ENV, then the compose file's environment, then the network rewrites and the
    secrets volume's folder."""
    env = {"HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    image = image_env(DOCKERFILES[IMAGE_OF[service]])
    assert image.pop("PATH").startswith("/opt/venv/bin:")
    env.update(image, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    compose_env = service_environment(service)
    env.update(with_secrets_at(compose_env, secrets))

    redis_url = urlsplit(compose_env["REDIS_URL"])
    assert redis_url.hostname in compose()["services"], "REDIS_URL names no compose service"
    env["REDIS_URL"] = redis_url._replace(netloc=f"127.0.0.1:{redis_port}").geturl()
    assert compose_env["API_BIND"].startswith("0.0.0.0:")
    env["API_BIND"] = f"127.0.0.1:{api_port}"
    assert compose_env["FLOWER_ADDRESS"] == "0.0.0.0"
    env["FLOWER_ADDRESS"], env["FLOWER_PORT"] = "127.0.0.1", str(flower_port)
    assert compose_env["DATA_DIR"] == image["DATA_DIR"] == "/data"
    env["DATA_DIR"] = data_dir
    return env


def workdir(root) -> str:
    """The images' WORKDIR /app: gunicorn_config.py (Dockerfile.api) and var/ (Dockerfile.worker)
    beside it; the code itself is installed, not in the working directory."""
    folder = root / "app"
    (folder / "var").mkdir(parents=True)
    shutil.copy(REPO / "gunicorn_config.py", folder)
    return str(folder)


def healthy(argv: list[str], env: dict[str, str], cwd: str) -> bool:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    return done.returncode == 0


@pytest.fixture(scope="module")
def native_stack(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("compose")
    secrets = generate_secrets(root / "secrets")  # the `secrets` service, first
    redis, redis_port = compose_redis(secrets, root / "redis")
    redis.start()
    redis.wait_ready(15)
    api_port, flower_port = free_port(), free_port()
    cwd = workdir(root)
    services = {}
    try:
        for name in APP_SERVICES:
            env = container_env(name, redis_port, api_port, flower_port, str(root / "data"),
                                secrets)
            command = compose()["services"][name]["command"]
            services[name] = (Service(name, command, env, root / f"{name}.log", cwd=cwd), env)
            services[name][0].start()
        yield services, cwd, f"http://127.0.0.1:{api_port}"
    finally:
        for process, _ in reversed(list(services.values())):
            process.close()
        redis.close()


def test_the_images_run_what_compose_runs():
    services = compose()["services"]
    assert image_cmd(DOCKERFILES["api"]) == services["api"]["command"]
    assert image_cmd(DOCKERFILES["worker"]) == services["worker"]["command"]
    assert ["CMD", *image_healthcheck(DOCKERFILES["api"])] == services["api"]["healthcheck"][
        "test"]
    assert ["CMD", *image_healthcheck(DOCKERFILES["worker"])] == services["worker"][
        "healthcheck"]["test"]


def test_every_service_turns_healthy_by_its_own_healthcheck(native_stack):
    services, cwd, _ = native_stack
    for name, (process, env) in services.items():
        check = compose()["services"][name]["healthcheck"]["test"]
        assert check[0] == "CMD"
        wait_for(lambda c=check, e=env, p=process: healthy(c[1:], e, cwd) or not p.alive(),
                 90, f"{name} never turned healthy")
        assert process.alive(), f"{name} exited:\n" + "\n".join(process.lines()[-20:])


def test_a_job_submitted_to_the_api_succeeds(native_stack):
    services, cwd, api = native_stack
    wait_for(lambda: requests.get(api + "/health/ready", timeout=5).ok, 60, "API not ready")
    # Compose runs staging: API keys are on. The first key, as the README makes it.
    _, env = services["api"]
    made = subprocess.run([str(BIN / "xmlconv-admin"), "keys", "create", "first"], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=60, check=True)
    auth = {"Authorization": f"Bearer {json.loads(made.stdout)['api_key']}"}
    refused = requests.post(api + "/jobs", files={"file": ("orders.xml", ORDERS)}, timeout=30)
    assert refused.status_code == 401
    response = requests.post(api + "/jobs", files={"file": ("orders.xml", ORDERS)},
                             data={"format": "json"}, headers=auth, timeout=30)
    assert response.status_code == 202, response.text
    job_url = api + response.headers["Location"]
    job = wait_for(lambda: (body := requests.get(job_url, headers=auth, timeout=5).json())[
        "status"] in ("succeeded", "failed") and body, 60, "the job did not finish",
        interval=0.2)
    assert job["status"] == "succeeded", job
    result = requests.get(job_url + "/result", headers=auth, timeout=30)
    assert result.status_code == 200
    assert json.loads(result.content) == {"orders": {"order": [
        {"@id": "1", "item": "tea"}, {"@id": "2", "item": ["milk", "sugar"]}]}}


def test_every_line_every_service_wrote_is_json(native_stack):
    services, _, _ = native_stack
    time.sleep(0.5)  # let the last access lines land
    for name, (process, _) in services.items():
        lines = process.lines()
        assert lines, f"{name} wrote nothing"
        for line in lines:
            assert isinstance(json.loads(line), dict), f"{name}: {line}"


def test_the_healthchecks_fail_when_their_service_is_absent(native_stack):
    """The same commands against a Redis database no beat or worker uses, and a dead port."""
    services, cwd, _ = native_stack
    for name in APP_SERVICES:
        process, env = services[name]
        elsewhere = dict(env, REDIS_URL=env["REDIS_URL"].rsplit("/", 1)[0] + "/7",
                         API_BIND=f"127.0.0.1:{free_port()}", FLOWER_PORT=str(free_port()))
        check = compose()["services"][name]["healthcheck"]["test"][1:]
        assert not healthy(check, elsewhere, cwd), f"{name}'s healthcheck passed anyway"


def test_without_the_redis_password_nothing_reaches_redis(native_stack):
    """Redis asks for the generated password: given none (an empty password file), the worker's
    and beat's healthchecks (which ask Redis themselves) fail, and so does xmlconv-admin."""
    services, cwd, _ = native_stack
    for name in ("worker", "beat"):
        _, env = services[name]
        check = compose()["services"][name]["healthcheck"]["test"][1:]
        assert healthy(check, env, cwd), name
        assert not healthy(check, dict(env, REDIS_PASSWORD_FILE="/dev/null"), cwd), name
    _, env = services["api"]
    refused = subprocess.run([str(BIN / "xmlconv-admin"), "keys", "list"],
                             env=dict(env, REDIS_PASSWORD_FILE="/dev/null"), cwd=cwd,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "auth" in refused.stderr.lower(), refused.stderr


def test_flower_asks_for_the_generated_credentials(native_stack):
    services, _, _ = native_stack
    _, env = services["flower"]
    flower = f"http://127.0.0.1:{env['FLOWER_PORT']}"
    user, password = Path(env["FLOWER_BASIC_AUTH_FILE"]).read_text().strip().split(":", 1)
    wait_for(lambda: requests.get(flower + "/healthcheck", timeout=5).ok, 60, "no Flower")
    assert requests.get(flower + "/", timeout=10).status_code == 401
    assert requests.get(flower + "/", auth=(user, "admin"), timeout=10).status_code == 401
    assert requests.get(flower + "/", auth=(user, password), timeout=10).status_code == 200
