"""api/limits.py in-process: the RateLimit-* headers and the 429 in our envelope (Flask's test
client against the session's real redis-server), and the limiter during a Redis outage."""

from __future__ import annotations

import pytest

from api import create_app
from api.limits import Allowance
from common.settings import load_settings
from jobs import keys
from testkit.commands import service_env
from testkit.waiting import free_port

UNKNOWN_JOB = "3f0c8a52-2b4e-4d7a-9a45-1c9a4b1f2e3d"
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]


@pytest.fixture
def client(redis_db, tmp_path):
    redis_db.client().flushdb()
    env = service_env(redis_db.url, tmp_path / "data", RATE_LIMIT_PER_MINUTE="3")
    return create_app(load_settings(env)).test_client()


def test_allowance_headers_are_seconds_until_the_window_resets():
    allowance = Allowance.at(5, reset_at=1000.2, remaining=3, now=958.0)
    assert allowance == Allowance(5, 3, 43)
    assert allowance.headers() == {"RateLimit-Limit": "5", "RateLimit-Remaining": "3",
                                   "RateLimit-Reset": "43"}
    assert Allowance.at(5, reset_at=958.0, remaining=-2, now=959.5) == Allowance(5, 0, 0)


def test_the_anonymous_client_counts_down_then_gets_429_in_the_envelope(client, redis_db):
    # An error raised after authentication is counted and carries the headers too.
    missing = client.get(f"/jobs/{UNKNOWN_JOB}")
    envelope(missing, 404, "JOB_NOT_FOUND")
    assert missing.headers["RateLimit-Limit"] == "3"
    assert missing.headers["RateLimit-Remaining"] == "2"
    for remaining in ("1", "0"):
        listed = client.get("/jobs")
        assert listed.status_code == 200
        assert listed.headers["RateLimit-Remaining"] == remaining
        assert 0 < int(listed.headers["RateLimit-Reset"]) <= 60
        assert "Retry-After" not in listed.headers
    refused = client.get("/jobs")
    error = envelope(refused, 429, "RATE_LIMITED")
    assert error["details"] == {"requests_per_minute": 3}
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["RateLimit-Remaining"] == "0"
    reset = int(refused.headers["RateLimit-Reset"])
    assert 0 < reset <= 60 and int(refused.headers["Retry-After"]) == reset
    assert "Connection" not in refused.headers  # no body to refuse: the connection stays
    # A refused upload is counted before anything else looks at it.
    upload = client.post("/jobs", data=b"<a/>", content_type="application/xml")
    envelope(upload, 429, "RATE_LIMITED")
    assert upload.headers["Connection"] == "close"
    assert not list(client.application.extensions["xmlconv"].settings.data_dir.glob("jobs/*"))
    # Health is neither limited nor labelled.
    for path in ("/health", "/health/ready"):
        health = client.get(path)
        assert health.status_code == 200
        assert not set(RATE_HEADERS) & set(health.headers.keys())
    # The counter is one Redis key under the service's prefix, with the window as its TTL.
    store = redis_db.client()
    (counter,) = store.keys(keys.rate_limits() + ":*")
    assert "anonymous" in counter and store.get(counter) == "5"
    assert 0 < store.ttl(counter) <= 60


def test_a_redis_outage_is_the_usual_503_not_a_500(tmp_path):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    client = create_app(load_settings(service_env(dead, tmp_path / "data"))).test_client()
    for method, path in (("get", "/jobs"), ("get", f"/jobs/{UNKNOWN_JOB}"),
                         ("post", "/convert/xml-to-json")):
        response = client.open(path, method=method.upper())
        envelope(response, 503, "QUEUE_UNAVAILABLE")
        assert int(response.headers["Retry-After"]) > 0
        assert not set(RATE_HEADERS) & set(response.headers.keys())
    assert client.get("/health").status_code == 200
