"""A bare `docker compose up` (no .env) has no publicly known secret: SECRET_KEY, the Redis
password and Flower's credentials are generated once into the `secrets` volume by
deploy/secrets.sh and read by every service from there; Redis asks for the password and runs in
protected mode. Checked on the compose file as Compose reads it, on the script as the `secrets`
service runs it, and on a real redis-server started with the redis.conf the script wrote."""

from __future__ import annotations

import re
import stat

import pytest
import redis
from stackfiles import (
    COMPOSE_FILE,
    SECRETS_MOUNT,
    compose,
    compose_redis,
    generate_secrets,
    interpolate,
    service_environment,
    with_secrets_at,
)

from common.settings import (
    FILE_VARIABLES,
    INSECURE_SECRET_KEY,
    SettingsError,
    load_settings,
)

# A variable whose value is a credential (AUTH_MODE and the *_FILE paths are not).
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|TOKEN|BASIC_AUTH)$")
SECRET_FILES = ("secret-key", "redis-password", "flower-basic-auth", "redis.conf",
                "sentinel.conf")


def bare_up_services() -> dict[str, dict]:
    """The services a bare `docker compose up` starts (no profile)."""
    return {name: spec for name, spec in compose()["services"].items()
            if not spec.get("profiles")}


def redis_clients() -> list[str]:
    """Every service that talks to Redis: the ones given REDIS_URL (the webhook deliverers too,
    whatever their name)."""
    return [name for name, spec in bare_up_services().items()
            if "REDIS_URL" in (spec.get("environment") or {})]


# -- the compose file


def test_no_service_of_a_bare_up_has_a_secret_written_in_the_compose_file():
    assert INSECURE_SECRET_KEY not in COMPOSE_FILE.read_text()
    for name in bare_up_services():
        environment = service_environment(name)
        for variable, value in environment.items():
            if SECRET_NAME.search(variable):
                assert value == "", f"{name}: {variable} has a default: {value!r}"


@pytest.mark.parametrize("service", redis_clients())
def test_every_redis_client_reads_the_generated_secrets(service):
    spec = compose()["services"][service]
    environment = service_environment(service)
    assert f"secrets:{SECRETS_MOUNT}:ro" in spec["volumes"]
    assert spec["depends_on"]["secrets"] == {"condition": "service_completed_successfully"}
    assert environment["SECRET_KEY_FILE"] == f"{SECRETS_MOUNT}/secret-key"
    assert environment["REDIS_PASSWORD_FILE"] == f"{SECRETS_MOUNT}/redis-password"
    assert environment["FLOWER_BASIC_AUTH_FILE"] == f"{SECRETS_MOUNT}/flower-basic-auth"


def test_redis_asks_for_the_generated_password_in_protected_mode():
    spec = compose()["services"]["redis"]
    command = spec["command"]
    # The config file first (redis-server's rule), from the read-only secrets volume.
    assert command[:2] == ["redis-server", f"{SECRETS_MOUNT}/redis.conf"]
    assert f"secrets:{SECRETS_MOUNT}:ro" in spec["volumes"]
    assert command[command.index("--protected-mode") + 1] == "yes"
    assert not any("requirepass" in arg or "--pass" in arg for arg in command)  # not for ps
    assert spec["depends_on"] == {"secrets": {"condition": "service_completed_successfully"}}
    # The healthcheck authenticates (a NOAUTH answer is no PONG) without a command-line password.
    check = [interpolate(arg, {}) for arg in spec["healthcheck"]["test"]]
    assert check[:3] == ["CMD", "sh", "-c"]
    assert check[3] == (f'export REDISCLI_AUTH="$(cat {SECRETS_MOUNT}/redis-password)"; '
                        'test "$(redis-cli ping)" = PONG')


def test_the_secrets_service_runs_once_per_up_and_owns_the_volume():
    spec = compose()["services"]["secrets"]
    assert spec["image"] == compose()["services"]["redis"]["image"]  # its redis user
    assert spec["command"] == ["sh", "/deploy/secrets.sh"]
    assert spec["volumes"] == [f"secrets:{SECRETS_MOUNT}",
                               "./deploy/secrets.sh:/deploy/secrets.sh:ro"]
    assert spec["restart"] == "no" and "ports" not in spec
    # A value in .env reaches it, so Redis and the services agree on it.
    assert set(spec["environment"]) == {"SECRET_KEY", "REDIS_PASSWORD", "FLOWER_BASIC_AUTH"}
    assert "secrets" in compose()["volumes"]


def test_without_the_generated_files_the_services_refuse_to_start(tmp_path):
    """No silent fallback to a built-in key: the volume missing is a start-up error."""
    environment = with_secrets_at(service_environment("api"), tmp_path / "empty")
    with pytest.raises(SettingsError) as caught:
        load_settings(environment, service="api")
    assert caught.value.variable in {f"{name}_FILE" for name in FILE_VARIABLES}


# -- deploy/secrets.sh


def test_secrets_are_generated_once_then_kept(tmp_path):
    folder = generate_secrets(tmp_path / "secrets")
    first = {name: (folder / name).read_text() for name in SECRET_FILES}
    key, password = first["secret-key"].strip(), first["redis-password"].strip()
    assert re.fullmatch(r"[0-9a-f]{64}", key) and re.fullmatch(r"[0-9a-f]{64}", password)
    assert key != password
    assert re.fullmatch(r"admin:[0-9a-f]{64}\n", first["flower-basic-auth"])
    assert f'requirepass "{password}"' in first["redis.conf"]
    assert "protected-mode yes" in first["redis.conf"]
    for name in SECRET_FILES:
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o400, name
    generate_secrets(folder)  # the next `docker compose up`
    assert {name: (folder / name).read_text() for name in SECRET_FILES} == first
    assert sorted(p.name for p in folder.iterdir()) == sorted(SECRET_FILES)  # no leftovers
    other = generate_secrets(tmp_path / "another")  # another installation: its own
    assert (other / "secret-key").read_text() != first["secret-key"]


def test_a_value_from_the_environment_wins_and_is_quoted_for_redis(tmp_path):
    folder = generate_secrets(tmp_path / "secrets")
    key = (folder / "secret-key").read_text()
    generate_secrets(folder, REDIS_PASSWORD='pa"ss\\word', FLOWER_BASIC_AUTH="ops:" + "x" * 20)
    assert (folder / "redis-password").read_text() == 'pa"ss\\word\n'
    assert (folder / "flower-basic-auth").read_text() == "ops:" + "x" * 20 + "\n"
    assert 'requirepass "pa\\"ss\\\\word"' in (folder / "redis.conf").read_text()
    assert (folder / "secret-key").read_text() == key  # the others kept


@pytest.fixture()
def secured_redis(tmp_path):
    """A real redis-server started as the compose file starts it, with the generated secrets."""
    folder = generate_secrets(tmp_path / "secrets")
    server, port = compose_redis(folder, tmp_path / "redis")
    server.start()
    try:
        server.wait_ready(15)
        yield port, (folder / "redis-password").read_text().strip()
    finally:
        server.close()


def test_the_generated_redis_conf_makes_redis_ask_for_the_password(secured_redis):
    port, password = secured_redis
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port, socket_timeout=2).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port, password="wrong", socket_timeout=2).ping()
    client = redis.Redis(port=port, password=password, socket_timeout=2, decode_responses=True)
    assert client.ping()
    assert client.config_get("protected-mode") == {"protected-mode": "yes"}


def test_the_services_reach_the_secured_redis_with_the_generated_password(secured_redis,
                                                                           tmp_path):
    port, password = secured_redis
    environment = with_secrets_at(service_environment("worker"), tmp_path / "secrets")
    environment["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    settings = load_settings(environment, service="worker")
    assert redis.Redis.from_url(settings.redis_url, socket_timeout=2).ping()


# -- the settings: secrets from files, and no public SECRET_KEY outside development

STAGING = {"DEPLOY_ENV": "staging", "REDIS_URL": "redis://redis:6379/0"}
KEY = "9f2c4e1a7b3d5f6081a2c3e4f5061728"


@pytest.mark.parametrize("stage", ["staging", "production"])
@pytest.mark.parametrize("key", [None, INSECURE_SECRET_KEY, "short-but-not-built-in"])
def test_outside_development_the_built_in_or_a_weak_secret_key_is_refused(stage, key):
    environ = {**STAGING, "DEPLOY_ENV": stage, "DATA_DIR": "/data"}
    if key is not None:
        environ["SECRET_KEY"] = key
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    assert caught.value.variable == "SECRET_KEY"
    assert "SECRET_KEY_FILE" in caught.value.message  # where compose puts it
    assert INSECURE_SECRET_KEY not in caught.value.message
    assert load_settings({**environ, "SECRET_KEY": KEY}).secret_key == KEY
    assert load_settings({}).secret_key == INSECURE_SECRET_KEY  # development keeps it


@pytest.mark.parametrize("name", FILE_VARIABLES)
def test_every_secret_setting_reads_its_file_and_the_variable_wins(name, tmp_path):
    values = {"REDIS_URL": "redis://cache:6380/2", "REDIS_PASSWORD": "s3cret-from-a-file",
              "REDIS_SENTINEL_PASSWORD": "sentinel-s3cret-from-a-file",
              "SECRET_KEY": "f" * 40, "FLOWER_BASIC_AUTH": "ops:correct-horse-battery",
              "METRICS_TOKEN": "t" * 40, "WEBHOOK_SECRET": "whsec_" + "QUJD" * 8}
    attribute = {"REDIS_PASSWORD": "redis_url"}.get(name, name.lower())
    secret = tmp_path / name.lower()
    secret.write_text(values[name] + "\n")  # as `echo value > file` writes it
    environ = {**STAGING, "SECRET_KEY": KEY, name: "", f"{name}_FILE": str(secret)}
    from_file = getattr(load_settings(environ), attribute)
    if name == "REDIS_PASSWORD":
        assert from_file == f"redis://:{values[name]}@redis:6379/0"
    else:
        assert from_file == values[name]
    given = {"REDIS_URL": "redis://other:6379/0", "REDIS_PASSWORD": "given-password",
             "REDIS_SENTINEL_PASSWORD": "given-sentinel-password",
             "SECRET_KEY": "g" * 40, "FLOWER_BASIC_AUTH": "ops:another-long-password",
             "METRICS_TOKEN": "u" * 40, "WEBHOOK_SECRET": "whsec_" + "REVG" * 8}[name]
    assert getattr(load_settings({**environ, name: given}), attribute) != from_file


@pytest.mark.parametrize(("content", "problem"), [
    (None, "cannot read"), (b"\xff\xfe", "not UTF-8"), (b"x" * 70000, "larger than")])
def test_a_bad_secret_file_stops_the_start_naming_the_variable_not_the_content(
        content, problem, tmp_path):
    secret = tmp_path / "secret-key"
    if content is not None:
        secret.write_bytes(content)
    with pytest.raises(SettingsError) as caught:
        load_settings({**STAGING, "SECRET_KEY_FILE": str(secret)})
    assert caught.value.variable == "SECRET_KEY_FILE"
    assert problem in caught.value.message and str(secret) in caught.value.message
    assert "xxxx" not in caught.value.message


def test_an_empty_secret_file_is_no_value(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SettingsError) as caught:
        load_settings({**STAGING, "SECRET_KEY_FILE": str(empty)})
    assert caught.value.variable == "SECRET_KEY" and "must be set" in caught.value.message
    # A Redis without a password: REDIS_PASSWORD_FILE=/dev/null leaves the URL as it is.
    settings = load_settings({**STAGING, "SECRET_KEY": KEY, "REDIS_PASSWORD_FILE": "/dev/null"})
    assert settings.redis_url == "redis://redis:6379/0"


@pytest.mark.parametrize(("url", "password", "expected"), [
    ("redis://redis:6379/0", "p@ss/w:rd", "redis://:p%40ss%2Fw%3Ard@redis:6379/0"),
    ("rediss://cache.example:6380/1", "k", "rediss://:k@cache.example:6380/1"),
    ("redis://app@redis:6379/0", "k", "redis://app:k@redis:6379/0"),  # an ACL user keeps its name
    ("rediss://:own@cache.example:6380/0", "k", "rediss://:own@cache.example:6380/0"),  # URL wins
])
def test_the_redis_password_goes_into_the_url(url, password, expected):
    settings = load_settings({**STAGING, "SECRET_KEY": KEY, "REDIS_URL": url,
                              "REDIS_PASSWORD": password})
    assert settings.redis_url == expected
    assert redis.Redis.from_url(settings.redis_url).connection_pool.connection_kwargs[
        "password"] in (password, "own")


@pytest.mark.parametrize(("url", "password"), [
    ("unix:///run/redis.sock", "kept-out-of-messages"), ("redis://redis:6379/0", "two words")])
def test_a_redis_password_that_cannot_be_used_is_refused(url, password):
    with pytest.raises(SettingsError) as caught:
        load_settings({**STAGING, "SECRET_KEY": KEY, "REDIS_URL": url,
                       "REDIS_PASSWORD": password})
    assert caught.value.variable == "REDIS_PASSWORD" and password not in caught.value.message
