"""API keys (jobs/api_keys.py) against a real redis-server, the settings that guard them, and
which webhook URLs the service will call (common/outbound_urls.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from common.errors import ServiceError
from common.outbound_urls import check_url
from common.settings import SettingsError, load_settings
from common.signing import webhook_secret
from jobs.api_keys import ApiKeys

PRODUCTION = {"DEPLOY_ENV": "production", "REDIS_URL": "redis://r:6379/0", "DATA_DIR": "/d",
              "SECRET_KEY": "9f2c4e1a7b3d5f6081a2c3e4f5061728"}


@pytest.fixture
def registry(redis_db) -> ApiKeys:
    client = redis_db.client()
    client.flushdb()
    return ApiKeys(client, "k" * 40)


def test_a_key_authenticates_until_revoked(registry):
    made = registry.create("acme", 60, 4)
    assert registry.authenticate(made.api_key) == made.tenant
    assert made.tenant.requests_per_minute == 60 and made.tenant.max_active_jobs == 4
    assert registry.revoke("acme") and registry.authenticate(made.api_key) is None
    assert not registry.revoke("acme")


@pytest.mark.parametrize("mangle", [
    lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),  # wrong secret
    lambda key: key.replace("xck_", "xcx_"),
    lambda key: key.rsplit("_", 1)[0],  # no secret
    lambda key: "",
    lambda key: key + "_" * 300,
])
def test_wrong_keys_are_refused(registry, mangle):
    made = registry.create("acme", 60, 4)
    assert registry.authenticate(mangle(made.api_key)) is None


def test_names_are_unique_and_listing_shows_no_secret(registry):
    made = registry.create("acme", 60, 4)
    with pytest.raises(ValueError):
        registry.create("acme", 1, 1)
    listed = registry.list()
    assert [entry["name"] for entry in listed] == ["acme"]
    assert "secret_sha256" not in listed[0] and made.api_key.rsplit("_", 1)[1] not in str(listed)


def test_the_webhook_secret_is_derived_not_stored(registry):
    made = registry.create("acme", 60, 4)
    assert made.webhook_secret == registry.webhook_secret(made.tenant.id)
    assert made.webhook_secret == webhook_secret("k" * 40, made.tenant.id)
    stored = b" ".join(registry.redis.dump(key) or b"" for key in registry.redis.keys("*"))
    assert made.webhook_secret.encode() not in stored
    # A valid Standard Webhooks secret: it signs and verifies.
    hook = Webhook(made.webhook_secret)
    now = datetime.now(tz=UTC)
    signature = hook.sign("msg_1", now, '{"a": 1}')
    assert hook.verify('{"a": 1}', {"webhook-id": "msg_1", "webhook-signature": signature,
                                    "webhook-timestamp": str(int(now.timestamp()))}) == {"a": 1}


@pytest.mark.parametrize(("changes", "variable"), [
    ({"AUTH_MODE": "none"}, "AUTH_MODE"),
    ({"SECRET_KEY": "short"}, "SECRET_KEY"),
    ({"SECRET_KEY": "insecure-development-secret-key-do-not-use-in-production"}, "SECRET_KEY"),
    ({"WEBHOOK_ALLOW_PRIVATE": "true"}, "WEBHOOK_ALLOW_PRIVATE"),
    ({"ALLOW_PRIVATE_ADDRESSES": "true"}, "ALLOW_PRIVATE_ADDRESSES"),
    ({"ALLOW_PRIVATE_ADDRESSES": "true", "WEBHOOK_ALLOW_PRIVATE": "false"},
     "ALLOW_PRIVATE_ADDRESSES"),
])
def test_production_refuses_unsafe_client_settings(changes, variable):
    assert load_settings(PRODUCTION).auth_mode == "api_key"
    with pytest.raises(SettingsError) as refused:
        load_settings({**PRODUCTION, **changes})
    assert refused.value.variable == variable


@pytest.mark.parametrize(("changes", "variable"), [
    ({"AUTH_MODE": "basic"}, "AUTH_MODE"),
    ({"WEBHOOK_SECRET": "not-whsec"}, "WEBHOOK_SECRET"),
    ({"WEBHOOK_SECRET": "whsec_c2hvcnQ="}, "WEBHOOK_SECRET"),
    ({"WEBHOOK_RETRY_SCHEDULE": "5,x"}, "WEBHOOK_RETRY_SCHEDULE"),
    ({"WEBHOOK_RETRY_SCHEDULE": "99999"}, "WEBHOOK_RETRY_SCHEDULE"),
    ({"RATE_LIMIT_PER_MINUTE": "0"}, "RATE_LIMIT_PER_MINUTE"),
    ({"MAX_ACTIVE_JOBS": "-1"}, "MAX_ACTIVE_JOBS"),
])
def test_bad_client_settings_name_the_variable(changes, variable):
    with pytest.raises(SettingsError) as refused:
        load_settings(changes)
    assert refused.value.variable == variable


def test_stage_defaults_for_clients():
    assert load_settings({}).auth_mode == "none"
    assert load_settings({"DEPLOY_ENV": "staging", "REDIS_URL": "redis://r/0",
                          "SECRET_KEY": "s" * 32}).auth_mode == "api_key"
    assert load_settings({}).webhook_retry_schedule == (5, 30, 120, 600, 1800)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://localhost:8080/", "https://10.1.2.3/", "http://[::1]/",
    "http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/",
    "http://100.64.0.1/", "http://192.168.1.1/", "http://224.0.0.1/", "http://2130706433/",
])
def test_private_webhook_urls_are_refused(url):
    with pytest.raises(ServiceError) as refused:
        check_url(url, allow_private=False)
    assert (refused.value.status, refused.value.code) == (400, "INVALID_WEBHOOK_URL")
    if "169.254." in url:  # link-local (cloud metadata): refused even with the switch
        with pytest.raises(ServiceError):
            check_url(url, allow_private=True)
    else:
        assert check_url(url, allow_private=True) == url


@pytest.mark.parametrize("url", [
    "ftp://example.com/", "javascript:alert(1)", "http://user:pw@example.com/", "http:///x",
    "https://" + "a" * 2100 + ".com/", "http://example.com:99999/",
])
def test_malformed_webhook_urls_are_refused_even_when_private_is_allowed(url):
    with pytest.raises(ServiceError):
        check_url(url, allow_private=True)


def test_a_public_address_is_accepted():
    assert check_url("https://93.184.216.34/hooks?x=1", allow_private=False)
