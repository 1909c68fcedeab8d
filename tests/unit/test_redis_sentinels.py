"""REDIS_SENTINELS and its companions: parsed, validated naming the variable, and turned into the
job store's client and the broker's `sentinel://` addresses (jobs/connection.py)."""

from __future__ import annotations

import pytest
from redis.sentinel import SentinelConnectionPool

from common.settings import SettingsError, load_settings
from jobs.connection import broker_transport_options, broker_url, connect
from jobs.queue import celery_config

SENTINELS = {"REDIS_SENTINELS": "s1.internal:26379, s2.internal:26380,[fd00::3]:26381",
             "REDIS_MASTER_NAME": "xmlconv"}
PRODUCTION = {"DEPLOY_ENV": "production", "DATA_DIR": "/data",
              "SECRET_KEY": "9f2c4e1a7b3d5f6081a2c3e4f5061728"}


def test_without_sentinels_redis_url_is_the_broker_and_nothing_waits():
    settings = load_settings({"REDIS_URL": "redis://r:6379/2"})
    assert settings.redis_sentinels == () and settings.redis_min_replicas == 0
    assert broker_url(settings) == "redis://r:6379/2"
    assert broker_transport_options(settings) == {}


def test_sentinels_name_the_primary_and_one_replica_must_acknowledge():
    settings = load_settings({**SENTINELS, "REDIS_URL": "redis://ignored-host:1/3",
                              "REDIS_PASSWORD": "pass/@"})
    assert settings.redis_sentinels == (("s1.internal", 26379), ("s2.internal", 26380),
                                        ("fd00::3", 26381))
    assert settings.redis_min_replicas == 1  # the default with Sentinels
    # Every Sentinel is an address of the broker; the host of REDIS_URL is nowhere, its
    # database and password (quoted) are in each.
    assert broker_url(settings) == ";".join([
        "sentinel://:pass%2F%40@s1.internal:26379/3", "sentinel://:pass%2F%40@s2.internal:26380/3",
        "sentinel://:pass%2F%40@[fd00::3]:26381/3"])
    assert "ignored-host" not in broker_url(settings)
    options = celery_config(settings)["broker_transport_options"]
    assert options["master_name"] == "xmlconv"
    assert options["visibility_timeout"] == settings.broker_visibility_timeout
    assert "password" not in options["sentinel_kwargs"]  # the Sentinels have none here


def test_the_sentinels_password_is_theirs_alone(tmp_path):
    secret = tmp_path / "sentinel-password"
    secret.write_text("sentinel-secret\n")
    settings = load_settings({**SENTINELS, "REDIS_SENTINEL_PASSWORD_FILE": str(secret),
                              "REDIS_PASSWORD": "primary-secret"})
    assert settings.redis_sentinel_password == "sentinel-secret"
    assert broker_transport_options(settings)["sentinel_kwargs"]["password"] == "sentinel-secret"
    assert "sentinel-secret" not in broker_url(settings)
    client = connect(settings)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "xmlconv"
    assert pool.connection_kwargs["password"] == "primary-secret"
    assert pool.connection_kwargs["db"] == 0  # REDIS_URL not given: database 0
    sentinel = pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs
    assert sentinel["password"] == "sentinel-secret"
    assert sentinel["socket_timeout"] == 1


def test_staging_needs_no_redis_url_with_sentinels():
    staging = {"DEPLOY_ENV": "staging", "SECRET_KEY": PRODUCTION["SECRET_KEY"]}
    with pytest.raises(SettingsError) as caught:
        load_settings(staging)
    assert caught.value.variable == "REDIS_URL"
    assert load_settings({**staging, **SENTINELS}).redis_sentinels


@pytest.mark.parametrize(("environ", "variable"), [
    ({"REDIS_SENTINELS": "s1.internal"}, "REDIS_SENTINELS"),
    ({"REDIS_SENTINELS": "s1.internal:²"}, "REDIS_SENTINELS"),
    ({"REDIS_SENTINELS": "s1:26379,s2:99999"}, "REDIS_SENTINELS"),
    ({"REDIS_SENTINELS": "user@s1:26379"}, "REDIS_SENTINELS"),
    ({**SENTINELS, "REDIS_MASTER_NAME": "my master"}, "REDIS_MASTER_NAME"),
    ({**SENTINELS, "REDIS_URL": "rediss://r:6380/0"}, "REDIS_URL"),
    ({**SENTINELS, "REDIS_URL": "unix:///run/redis.sock"}, "REDIS_URL"),
    ({**SENTINELS, "REDIS_MIN_REPLICAS": "-1"}, "REDIS_MIN_REPLICAS"),
    ({**SENTINELS, "REDIS_MIN_REPLICAS": "17"}, "REDIS_MIN_REPLICAS"),
    ({**SENTINELS, "REDIS_REPLICA_TIMEOUT_MS": "0"}, "REDIS_REPLICA_TIMEOUT_MS"),
    ({**SENTINELS, "REDIS_SENTINEL_PASSWORD": "two words"}, "REDIS_SENTINEL_PASSWORD"),
    # Production with failover but no replica acknowledging: accepted jobs could be lost.
    ({**PRODUCTION, **SENTINELS, "REDIS_MIN_REPLICAS": "0"}, "REDIS_MIN_REPLICAS"),
])
def test_bad_failover_settings_name_the_variable(environ, variable):
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    assert caught.value.variable == variable


def test_replicas_may_be_required_without_sentinels_and_waived_outside_production():
    # A managed Redis whose failover endpoint is REDIS_URL: the API can still wait for a replica.
    assert load_settings({"REDIS_MIN_REPLICAS": "2"}).redis_min_replicas == 2
    assert load_settings({**SENTINELS, "REDIS_MIN_REPLICAS": "0"}).redis_min_replicas == 0
    assert load_settings({**PRODUCTION, **SENTINELS}).redis_min_replicas == 1
