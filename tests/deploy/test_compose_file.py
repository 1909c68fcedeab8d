"""docker-compose.yml: valid against the Compose Specification's JSON schema, and shaped as
docs/deployment.md promises — scalable workers, healthy-first startup, every variable defaulted.

compose-spec.json beside this file is `schema/compose-spec.json` of the Compose Specification
(github.com/compose-spec/compose-spec, commit 00655e22, Apache License 2.0), unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from stackfiles import (
    APP_SERVICES,
    OTEL_SDK_VARIABLES,
    S3_CREDENTIALS,
    compose,
    generate_secrets,
    placeholders,
    service_environment,
    with_secrets_at,
)

from common.settings import VARIABLES, load_settings
from testkit import REPO

SCHEMA = Path(__file__).with_name("compose-spec.json")


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_compose_file_follows_the_compose_specification(validator):
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(
        compose())]
    assert errors == []


def test_the_schema_does_refuse_a_broken_file(validator):
    broken = {"services": {"api": {"image": "x", "restart_policy": "always",
                                   "depends_on": {"redis": {"condition": "healthy"}}}}}
    assert len(list(validator.iter_errors(broken))) >= 2


def test_every_variable_has_a_default_so_a_bare_up_works():
    found = placeholders()
    assert found
    for match in found:
        if match.group(0) != "$$":
            assert match["op"] == ":-", f"{match.group(0)} has no ${{VAR:-default}} default"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_application_services_get_every_variable_and_valid_settings(service, tmp_path):
    environment = service_environment(service)
    assert sorted(environment) == sorted((*VARIABLES, *S3_CREDENTIALS, *OTEL_SDK_VARIABLES))
    secrets = generate_secrets(tmp_path / "secrets")  # what the `secrets` service writes
    settings = load_settings(with_secrets_at(environment, secrets), service=service)
    assert settings.deploy_env == "staging" and str(settings.data_dir) == "/data"
    password = (secrets / "redis-password").read_text().strip()
    assert settings.redis_url == f"redis://:{password}@redis:6379/0"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_application_services_start_after_redis_is_healthy_and_restart(service):
    spec = compose()["services"][service]
    assert spec["depends_on"] == {"secrets": {"condition": "service_completed_successfully"},
                                  "redis": {"condition": "service_healthy"}}
    assert spec["restart"] == "unless-stopped"
    assert spec["env_file"] == [{"path": ".env", "required": False}]
    assert spec["volumes"] == ["data:/data", "secrets:/secrets:ro"]
    assert spec["healthcheck"]["test"][0] == "CMD"


def test_workers_scale():
    services = compose()["services"]
    assert all("container_name" not in spec for spec in services.values())
    worker = services["worker"]
    assert "ports" not in worker and "hostname" not in worker
    # Soft shutdown: a running job gets WORKER_SOFT_SHUTDOWN_TIMEOUT, then is handed back to
    # the queue; the grace period covers that with room for the cold shutdown, and no more
    # than a platform such as Cloud Run gives (10 s).
    grace = _seconds(worker["stop_grace_period"])
    assert load_settings({}).worker_soft_shutdown_timeout + 5 <= grace <= 10


def test_redis_keeps_queued_jobs_and_is_not_published():
    compose_doc = compose()
    redis = compose_doc["services"]["redis"]
    assert redis["image"] == "redis:7"
    assert "ports" not in redis
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert redis["volumes"] == ["redis-data:/data", "secrets:/secrets:ro"]
    assert set(compose_doc["volumes"]) == {"data", "redis-data", "secrets", "s3-data",
                                            "redis-replica-data"}


def test_published_ports():
    services = compose()["services"]
    assert services["api"]["ports"] == ["5000:5000"]
    assert services["flower"]["ports"] == ["127.0.0.1:5555:5555"]
    assert service_environment("api")["API_BIND"].endswith(":5000")
    assert service_environment("flower")["FLOWER_PORT"] == "5555"


def test_worker_beat_and_flower_share_one_image():
    services = compose()["services"]
    builds = {name: (services[name]["build"]["dockerfile"], services[name]["image"])
              for name in ("worker", "beat", "flower")}
    assert set(builds.values()) == {("Dockerfile.worker", "its-convert-xml-worker")}
    assert services["api"]["build"]["dockerfile"] == "Dockerfile.api"


def _seconds(duration: str) -> int:
    units = {"h": 3600, "m": 60, "s": 1}
    total, number = 0, ""
    for char in duration:
        if char.isdigit():
            number += char
        else:
            total, number = total + int(number) * units[char], ""
    return total


def test_the_object_store_runs_only_in_the_s3_profile():
    seaweedfs = compose()["services"]["seaweedfs"]
    assert seaweedfs["profiles"] == ["s3"]
    assert "ports" not in seaweedfs  # only the stack reaches it
    assert seaweedfs["volumes"] == ["s3-data:/data"]
    assert all(spec.get("profiles") is None for name, spec in compose()["services"].items()
               if name not in ("seaweedfs", *HA_SERVICES))


HA_SERVICES = ("redis-replica", "sentinel-1", "sentinel-2", "sentinel-3")


def test_the_ha_profile_is_a_replica_and_three_sentinels_of_redis():
    services = compose()["services"]
    for name in HA_SERVICES:
        assert services[name]["profiles"] == ["ha"], name
        assert "ports" not in services[name]  # only the stack reaches them
    command = services["redis-replica"]["command"]
    assert command[:-5] == services["redis"]["command"]
    assert command[-5:] == ["--port", "6380", "--replicaof", "redis", "6379"]
    assert len({str(services[f"sentinel-{n}"]["command"]) for n in (1, 2, 3)}) == 1
    # A port each (as the docs' REDIS_SENTINELS lists them): they also run on one host network.
    assert [services[f"sentinel-{n}"]["environment"]["SENTINEL_PORT"] for n in (1, 2, 3)] == [
        "26379", "26380", "26381"]
    # The generated sentinel.conf watches `redis` under the name the docs give REDIS_MASTER_NAME.
    script = (REPO / "deploy" / "secrets.sh").read_text()
    assert "sentinel monitor xmlconv redis 6379 2" in script and "masterauth" in script
