"""GET /metrics on the Flask app (no gunicorn: one process, prometheus_client's own registry)
against a real redis-server: what each request leaves in the HTTP figures, who may read them,
and the METRICS_TOKEN setting. Several gunicorn processes: tests/integration/test_metrics.py."""

from __future__ import annotations

import io
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from api import create_app
from common.settings import SettingsError, load_settings
from testkit.commands import service_env

TOKEN = "metrics-" + "x" * 32
DOC = b"<orders><order><id>1</id></order></orders>"


def app_client(redis_db, tmp_path, **env: str):
    redis_db.client().flushdb()
    return create_app(load_settings(service_env(redis_db.url, tmp_path / "data",
                                                **env))).test_client()


def scrape(client, **headers: str) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=0.0.4")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def requests_of(found, route: str, method: str, status: str) -> float:
    key = ("xmlconv_http_request_duration_seconds_count",
           (("method", method), ("route", route), ("status", status)))
    return found.get(key, 0)


def test_requests_are_counted_by_url_rule_method_and_status(redis_db, tmp_path):
    client = app_client(redis_db, tmp_path)
    before = scrape(client)
    for _ in range(3):
        assert client.get(f"/jobs/{uuid.uuid4()}").status_code == 404
    assert client.get("/no/such/page").status_code == 404
    assert client.open("/health", method="BREW").status_code == 405
    assert client.get("/health").status_code == 200
    after = scrape(client)

    def delta(route, method, status):
        return requests_of(after, route, method, status) - requests_of(before, route, method,
                                                                      status)

    assert delta("/jobs/<job_id>", "GET", "404") == 3  # one series, whatever the ids
    assert delta("unmatched", "GET", "404") == 1  # never the path
    assert delta("unmatched", "other", "405") == 1  # nor a made-up method
    assert delta("/health", "GET", "200") == 1
    assert delta("/metrics", "GET", "200") == 1  # the first scrape
    assert not any("no/such" in str(labels) or "BREW" in str(labels) for _, labels in after)


def test_request_bodies_are_weighed_as_received(redis_db, tmp_path):
    client = app_client(redis_db, tmp_path)
    key = ("xmlconv_http_request_body_bytes_sum", (("route", "/jobs"),))
    before = scrape(client).get(key, 0)
    raw = client.post("/jobs?format=csv", data=DOC, headers={"Content-Type": "application/xml"})
    assert raw.status_code == 202, raw.get_data(as_text=True)
    form = client.post("/jobs", data={"file": (io.BytesIO(DOC), "a.xml"), "format": "json"},
                       content_type="multipart/form-data")
    assert form.status_code == 202, form.get_data(as_text=True)
    found = scrape(client)
    assert found[key] - before == len(DOC) + form.request.content_length
    assert found[("xmlconv_jobs_submitted_total", (("format", "csv"),))] == 1
    assert found[("xmlconv_jobs_unfinished", (("status", "queued"),))] == 2


def test_a_request_refused_before_its_view_keeps_its_route(redis_db, tmp_path):
    client = app_client(redis_db, tmp_path, AUTH_MODE="api_key", METRICS_TOKEN=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    before = scrape(client, **auth)
    assert client.get(f"/jobs/{uuid.uuid4()}").status_code == 401  # no API key
    after = scrape(client, **auth)
    assert (requests_of(after, "/jobs/<job_id>", "GET", "401")
            - requests_of(before, "/jobs/<job_id>", "GET", "401")) == 1


def test_who_may_read_the_metrics(redis_db, tmp_path):
    open_ = app_client(redis_db, tmp_path)  # development, no token: open
    assert open_.get("/metrics").status_code == 200

    staging = {"DEPLOY_ENV": "staging", "SECRET_KEY": "s" * 32}  # staging needs a key of its own
    off = app_client(redis_db, tmp_path, **staging)
    refused = off.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert refused.status_code == 404 and refused.json["error"]["code"] == "NOT_FOUND"
    assert "METRICS_TOKEN" in refused.json["error"]["message"]

    guarded = app_client(redis_db, tmp_path, **staging, METRICS_TOKEN=TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}):
        refused = guarded.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.json["error"]["code"] == "UNAUTHENTICATED"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert guarded.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    posted = guarded.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert posted.status_code == 405 and posted.headers["Allow"] == "GET, HEAD"


PRODUCTION = {"DEPLOY_ENV": "production", "REDIS_URL": "redis://redis:6379/0",
              "DATA_DIR": "/data", "SECRET_KEY": "9f2c4e1a7b3d5f6081a2c3e4f5061728"}


@pytest.mark.parametrize(("environ", "accepted"), [
    ({**PRODUCTION}, True),  # no token: /metrics is off
    ({**PRODUCTION, "METRICS_TOKEN": "a" * 31}, False),
    ({**PRODUCTION, "METRICS_TOKEN": "a" * 32}, True),
    ({"DEPLOY_ENV": "development", "METRICS_TOKEN": "short"}, True),
    ({"DEPLOY_ENV": "development", "METRICS_TOKEN": "has space"}, False),
])
def test_the_metrics_token_setting(environ, accepted):
    if accepted:
        assert load_settings(environ).metrics_token == environ.get("METRICS_TOKEN", "")
    else:
        with pytest.raises(SettingsError) as refused:
            load_settings(environ)
        assert refused.value.variable == "METRICS_TOKEN"
        assert environ["METRICS_TOKEN"] not in str(refused.value)  # never echoed
