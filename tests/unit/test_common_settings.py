"""common/settings.py: defaults per stage, validation naming the variable, process exit."""

from __future__ import annotations

import json

import pytest

from common.settings import SettingsError, load_settings, settings_or_exit


def test_development_defaults():
    settings = load_settings({})
    assert settings.deploy_env == "development"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.max_upload_bytes == 300 * 1024 * 1024
    assert settings.result_ttl_seconds == 86400
    assert settings.api_bind.startswith("127.0.0.1:")
    assert settings.broker_visibility_timeout > settings.job_time_limit
    assert settings.delete_input_on_finish is True
    assert settings.worker_memory_limit_mb == 256
    assert settings.job_cancel_grace_seconds == 3


@pytest.mark.parametrize(("environ", "variable"), [
    ({"DEPLOY_ENV": "prod"}, "DEPLOY_ENV"),
    ({"MAX_UPLOAD_BYTES": "lots"}, "MAX_UPLOAD_BYTES"),
    ({"MAX_UPLOAD_BYTES": "0"}, "MAX_UPLOAD_BYTES"),
    ({"REDIS_URL": "http://x"}, "REDIS_URL"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ({"DELETE_INPUT_ON_FINISH": "perhaps"}, "DELETE_INPUT_ON_FINISH"),
    ({"JOB_SOFT_TIME_LIMIT": "100", "JOB_TIME_LIMIT": "100"}, "JOB_SOFT_TIME_LIMIT"),
    ({"JOB_TIME_LIMIT": "100", "JOB_SOFT_TIME_LIMIT": "50",
      "BROKER_VISIBILITY_TIMEOUT": "100"}, "BROKER_VISIBILITY_TIMEOUT"),
    ({"API_BIND": "8000"}, "API_BIND"),
    ({"API_BIND": "0.0.0.0:²"}, "API_BIND"),  # str.isdigit is true for '²'
    ({"WEBHOOK_RETRY_SCHEDULE": "5,²"}, "WEBHOOK_RETRY_SCHEDULE"),  # was a ValueError
    ({"DOWNLOAD_MIN_BYTES_PER_SECOND": "-1"}, "DOWNLOAD_MIN_BYTES_PER_SECOND"),
    ({"DOWNLOAD_MIN_BYTES_PER_SECOND": "fast"}, "DOWNLOAD_MIN_BYTES_PER_SECOND"),
    ({"FLOWER_BASIC_AUTH": "nopassword"}, "FLOWER_BASIC_AUTH"),
    ({"MAX_WAIT_SECONDS": "61"}, "MAX_WAIT_SECONDS"),
    ({"WORKER_MEMORY_LIMIT_MB": "-1"}, "WORKER_MEMORY_LIMIT_MB"),
    ({"WORKER_MEMORY_LIMIT_MB": "lots"}, "WORKER_MEMORY_LIMIT_MB"),
    ({"JOB_CANCEL_GRACE_SECONDS": "0"}, "JOB_CANCEL_GRACE_SECONDS"),
    ({"DEPLOY_ENV": "production"}, "REDIS_URL"),
    ({"DEPLOY_ENV": "production", "REDIS_URL": "redis://r:6379/0"}, "DATA_DIR"),
])
def test_bad_values_name_the_variable(environ, variable):
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    assert caught.value.variable == variable


def test_production_requires_flower_credentials_for_flower_only():
    environ = {"DEPLOY_ENV": "production", "REDIS_URL": "redis://r:6379/0", "DATA_DIR": "/d",
               "SECRET_KEY": "9f2c4e1a7b3d5f6081a2c3e4f5061728"}
    settings = load_settings(environ)
    assert settings.api_bind.startswith("0.0.0.0:") and settings.is_production
    with pytest.raises(SettingsError) as caught:
        load_settings(environ, service="flower")
    assert caught.value.variable == "FLOWER_BASIC_AUTH"
    assert load_settings({**environ, "FLOWER_BASIC_AUTH": "ops:a-long-enough-secret"},
                         service="flower")


def test_settings_are_frozen():
    settings = load_settings({})
    with pytest.raises(AttributeError):
        settings.max_upload_bytes = 1  # type: ignore[misc]


def test_bad_value_stops_the_process_with_a_json_line(capsys):
    with pytest.raises(SystemExit) as exited:
        settings_or_exit("api", {"RESULT_TTL_SECONDS": "soon"})
    assert exited.value.code == 2
    line = json.loads(capsys.readouterr().err)
    assert line["variable"] == "RESULT_TTL_SECONDS" and line["level"] == "CRITICAL"
    assert "RESULT_TTL_SECONDS" in line["message"] and line["service"] == "api"


def test_storage_url_defaults_to_a_file_url_under_data_dir(tmp_path):
    settings = load_settings({"DATA_DIR": str(tmp_path)})
    assert settings.storage_url == tmp_path.as_uri()
    assert settings.s3_endpoint_url == "" and settings.s3_region == "us-east-1"


@pytest.mark.parametrize(("raw", "expected"), [
    ("s3://bucket", "s3://bucket"),
    ("s3://my-bucket/some/prefix/", "s3://my-bucket/some/prefix"),
    ("file:///srv/data", "file:///srv/data"),
])
def test_storage_url_accepts_file_and_s3(raw, expected):
    assert load_settings({"STORAGE_URL": raw}).storage_url == expected


@pytest.mark.parametrize("raw", ["http://bucket", "s3://", "s3://B", "file://relative/path",
                                 "bucket/prefix", "s3://under_score"])
def test_a_bad_storage_url_names_the_variable(raw):
    with pytest.raises(SettingsError) as caught:
        load_settings({"STORAGE_URL": raw})
    assert caught.value.variable == "STORAGE_URL"


def test_a_bad_s3_endpoint_names_the_variable():
    with pytest.raises(SettingsError) as caught:
        load_settings({"S3_ENDPOINT_URL": "seaweedfs:8333"})
    assert caught.value.variable == "S3_ENDPOINT_URL"
    assert load_settings({"S3_ENDPOINT_URL": "http://seaweedfs:8333/"}).s3_endpoint_url == \
        "http://seaweedfs:8333"


def test_result_delivery_redirect_needs_s3():
    assert load_settings({}).result_delivery == "proxy"
    assert load_settings({"STORAGE_URL": "s3://bucket", "RESULT_DELIVERY": "redirect",
                          }).result_delivery == "redirect"
    for environ in ({"RESULT_DELIVERY": "redirect"}, {"RESULT_DELIVERY": "teleport"}):
        with pytest.raises(SettingsError) as caught:
            load_settings(environ)
        assert caught.value.variable == "RESULT_DELIVERY"


@pytest.mark.parametrize(("environ", "allowed"), [
    ({}, False),
    ({"ALLOW_PRIVATE_ADDRESSES": "true"}, True),
    ({"WEBHOOK_ALLOW_PRIVATE": "true"}, True),  # the old name still works
    ({"WEBHOOK_ALLOW_PRIVATE": "true", "ALLOW_PRIVATE_ADDRESSES": "false"}, False),  # new wins
    ({"WEBHOOK_ALLOW_PRIVATE": "false", "ALLOW_PRIVATE_ADDRESSES": "true"}, True),
])
def test_the_private_addresses_switch_keeps_its_old_name(environ, allowed):
    assert load_settings(environ).allow_private_addresses is allowed


@pytest.mark.parametrize(("environ", "variable"), [
    ({"WEBHOOK_ALLOW_PRIVATE": "maybe"}, "WEBHOOK_ALLOW_PRIVATE"),
    ({"ALLOW_PRIVATE_ADDRESSES": "maybe"}, "ALLOW_PRIVATE_ADDRESSES"),
    ({"INPUT_FETCH_TIMEOUT": "0"}, "INPUT_FETCH_TIMEOUT"),
    ({"INPUT_FETCH_TIMEOUT": "1740"}, "INPUT_FETCH_TIMEOUT"),  # not below the soft time limit
    ({"INPUT_FETCH_MIN_BYTES_PER_SECOND": "-1"}, "INPUT_FETCH_MIN_BYTES_PER_SECOND"),
])
def test_bad_import_settings_name_the_variable(environ, variable):
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    assert caught.value.variable == variable


def test_the_fetch_deadline_fits_inside_the_jobs_time():
    defaults = load_settings({})
    assert (defaults.input_fetch_timeout, defaults.input_fetch_min_bytes_per_second) == (
        600, 65536)
    lowered = load_settings({"JOB_SOFT_TIME_LIMIT": "30", "JOB_TIME_LIMIT": "40"})
    assert lowered.input_fetch_timeout == 29
