"""Many clients on one service (AUTH_MODE=api_key, the real API, worker and Redis): API keys made
and revoked with `xmlconv-admin`, every route sealed between two keys, Idempotency-Keys scoped
per key, the job list with its filters and cursor, tags and metadata."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import requests

from testkit import BIN, REPO
from testkit.jobs_api import accepted_job, error_of
from testkit.waiting import free_port

DOC = b"<orders><order id='1'><item>tea</item></order><order id='2'/></orders>"


def submit(stack, headers: dict, data: dict | None = None, doc: bytes = DOC,
           extra_headers: dict | None = None) -> requests.Response:
    return requests.post(stack.url("/jobs"), files={"file": ("orders.xml", doc)},
                         data=data or {}, headers={**headers, **(extra_headers or {})},
                         timeout=60)


@pytest.fixture(scope="module")
def alice(keyed_stack) -> dict:
    return keyed_stack.key(f"alice-{time.monotonic_ns()}")


@pytest.fixture(scope="module")
def bob(keyed_stack) -> dict:
    return keyed_stack.key(f"bob-{time.monotonic_ns()}")


def test_a_new_key_is_shown_once_and_listed_without_secrets(keyed_stack):
    name = f"carol-{time.monotonic_ns()}"
    key = keyed_stack.key(name, "--requests-per-minute", "7", "--max-active-jobs", "3")
    assert key["name"] == name and key["api_key"].startswith("xck_")
    assert key["webhook_secret"].startswith("whsec_")
    assert (key["requests_per_minute"], key["max_active_jobs"]) == (7, 3)
    listed = keyed_stack.admin("keys", "list")
    assert listed.returncode == 0
    entry = next(k for k in json.loads(listed.stdout) if k["name"] == name)
    assert entry["requests_per_minute"] == 7
    assert key["api_key"] not in listed.stdout and key["webhook_secret"] not in listed.stdout
    assert "secret" not in json.dumps(entry)
    # A name is one key: a second create is refused until the first is revoked.
    again = keyed_stack.admin("keys", "create", name)
    assert again.returncode == 1 and again.stdout == ""
    assert json.loads(again.stderr) == {"error": {
        "code": "KEY_NAME_TAKEN", "message": f"a key named {name!r} exists; revoke it first",
        "details": {"name": name}}}
    # Nothing in Redis holds the secrets in the clear.
    client = keyed_stack_redis(keyed_stack)
    everything = " ".join(str(client.dump(k)) for k in client.keys("xmlconv:client*"))
    secret_part = key["api_key"].split("_", 2)[2]  # xck_<id>_<secret>; the secret may hold "_"
    assert secret_part not in everything and key["webhook_secret"] not in everything


def keyed_stack_redis(keyed_stack):
    import redis

    return redis.Redis.from_url(keyed_stack.env["REDIS_URL"])


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer xck_nope_nope",
                                           "Basic YWxpY2U6c2VjcmV0", "xck_abc_def"])
def test_missing_or_wrong_keys_get_401_before_the_body_is_read(keyed_stack, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    for method, path in [("post", "/jobs"), ("get", "/jobs"),
                         ("get", "/jobs/3f0c8a52-2b4e-4d7a-9a45-1c9a4b1f2e3d"),
                         ("post", "/convert/xml-to-json")]:
        response = requests.request(method, keyed_stack.url(path), headers=headers,
                                    data=b"<a/>" if method == "post" else None, timeout=30)
        error_of(response, 401, "UNAUTHENTICATED")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert requests.get(keyed_stack.url("/health"), timeout=10).status_code == 200
    assert requests.get(keyed_stack.url("/health/ready"), timeout=10).status_code == 200


def test_another_clients_job_is_exactly_like_an_unknown_one(keyed_stack, alice, bob):
    job = accepted_job(submit(keyed_stack, alice["headers"]))
    assert keyed_stack.wait_finished(job["id"], alice["headers"])["status"] == "succeeded"
    unknown = "3f0c8a52-2b4e-4d7a-9a45-1c9a4b1f2e3d"
    for method, suffix in [("get", ""), ("get", "/result"), ("delete", "")]:
        theirs = requests.request(method, keyed_stack.url(f"/jobs/{job['id']}{suffix}"),
                                  headers=bob["headers"], timeout=30)
        nobodys = requests.request(method, keyed_stack.url(f"/jobs/{unknown}{suffix}"),
                                   headers=bob["headers"], timeout=30)
        assert theirs.status_code == nobodys.status_code == 404
        assert theirs.json() == nobodys.json()
    listed = requests.get(keyed_stack.url("/jobs"), headers=bob["headers"], timeout=30).json()
    assert job["id"] not in {j["id"] for j in listed["jobs"]}
    # Still there for its owner; after its owner deletes it: 410 for the owner, 404 for Bob.
    mine = requests.get(keyed_stack.url(f"/jobs/{job['id']}/result"), headers=alice["headers"],
                        timeout=30)
    assert mine.status_code == 200 and mine.json()["orders"]["order"][0]["@id"] == "1"
    assert requests.delete(keyed_stack.url(f"/jobs/{job['id']}"), headers=alice["headers"],
                           timeout=30).status_code == 204
    error_of(requests.get(keyed_stack.url(f"/jobs/{job['id']}"), headers=alice["headers"],
                          timeout=30), 410, "JOB_EXPIRED")
    error_of(requests.get(keyed_stack.url(f"/jobs/{job['id']}"), headers=bob["headers"],
                          timeout=30), 404, "JOB_NOT_FOUND")


def test_idempotency_keys_are_scoped_per_client(keyed_stack, alice, bob):
    key = {"Idempotency-Key": f"order-{time.monotonic_ns()}"}
    first = accepted_job(submit(keyed_stack, alice["headers"], extra_headers=key))
    replay = submit(keyed_stack, alice["headers"], extra_headers=key)
    assert replay.status_code in (200, 202) and replay.json()["id"] == first["id"]
    # The same key from another client is its own job, not Alice's.
    other = accepted_job(submit(keyed_stack, bob["headers"], extra_headers=key))
    assert other["id"] != first["id"]
    # A key reused for a different request does not reveal the earlier job's id.
    mismatch = submit(keyed_stack, alice["headers"], doc=b"<other/>", extra_headers=key)
    error = error_of(mismatch, 422, "IDEMPOTENCY_KEY_MISMATCH")
    assert first["id"] not in mismatch.text and error["details"] == {}


def test_a_revoked_key_is_refused_on_its_next_request(keyed_stack):
    name = f"dave-{time.monotonic_ns()}"
    dave = keyed_stack.key(name)
    assert requests.get(keyed_stack.url("/jobs"), headers=dave["headers"],
                        timeout=30).status_code == 200
    revoked = keyed_stack.admin("keys", "revoke", name)
    assert revoked.returncode == 0, revoked.stderr
    error_of(requests.get(keyed_stack.url("/jobs"), headers=dave["headers"], timeout=30),
             401, "UNAUTHENTICATED")
    again = keyed_stack.admin("keys", "revoke", name)
    assert again.returncode == 1
    assert json.loads(again.stderr)["error"]["code"] == "KEY_NOT_FOUND"


def test_admin_errors_are_the_apis_envelope_and_usage_exits_2(keyed_stack):
    away = {**keyed_stack.env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    done = subprocess.run([str(BIN / "xmlconv-admin"), "keys", "list"], env=away, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    error = json.loads(done.stderr)["error"]
    assert error["code"] == "QUEUE_UNAVAILABLE" and error["details"] == {}
    done = keyed_stack.admin("keys", "create", "no spaces allowed")
    assert done.returncode == 2 and "usage: xmlconv-admin" in done.stderr


def test_tags_and_metadata_are_kept_and_checked(keyed_stack, alice):
    metadata = {"customer": 42, "note": "é"}
    job = accepted_job(submit(keyed_stack, alice["headers"],
                              {"tag": "nightly-2026.11", "metadata": json.dumps(metadata)}))
    assert job["tag"] == "nightly-2026.11" and job["metadata"] == metadata
    for field, value in [("tag", "has space"), ("tag", "x" * 65), ("metadata", "[1, 2]"),
                         ("metadata", "not json"),
                         ("metadata", json.dumps({"k": "v" * 5000}))]:
        error = error_of(submit(keyed_stack, alice["headers"], {field: value}), 400,
                         "INVALID_REQUEST")
        assert error["details"]["parameter"] == field


def test_the_list_pages_newest_first_with_filters_while_jobs_are_added(keyed_stack):
    erin = keyed_stack.key(f"erin-{time.monotonic_ns()}")
    headers = erin["headers"]
    made = [accepted_job(submit(keyed_stack, headers, {"tag": "even" if i % 2 else "odd"}))
            for i in range(7)]
    failed = accepted_job(submit(keyed_stack, headers, doc=b"<a><b></a>"))
    for job in [*made, failed]:
        keyed_stack.wait_finished(job["id"], headers)
    newest_first = [failed["id"], *[job["id"] for job in reversed(made)]]

    seen, url = [], "/jobs?limit=3"
    while url:
        page = requests.get(keyed_stack.url(url), headers=headers, timeout=30)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["jobs"]) <= 3
        seen += [job["id"] for job in body["jobs"]]
        if len(seen) == 3:  # a job added mid-walk does not shift the pages
            accepted_job(submit(keyed_stack, headers))
        url = body["next"]
    assert seen == newest_first

    evens = requests.get(keyed_stack.url("/jobs?tag=even&limit=100"), headers=headers,
                         timeout=30).json()
    assert [job["id"] for job in evens["jobs"]] == [
        job["id"] for job in reversed(made[1::2])]
    failures = requests.get(keyed_stack.url("/jobs?status=failed"), headers=headers,
                            timeout=30).json()
    assert [job["id"] for job in failures["jobs"]] == [failed["id"]]
    for query in ["limit=0", "limit=101", "status=done", "cursor=garbage", "tag=a%20b"]:
        error_of(requests.get(keyed_stack.url(f"/jobs?{query}"), headers=headers, timeout=30),
                 400, "INVALID_REQUEST")


def test_production_refuses_auth_mode_none():
    import subprocess

    env = {"PATH": str(BIN), "DEPLOY_ENV": "production", "REDIS_URL": "redis://127.0.0.1:1/0",
           "DATA_DIR": "/tmp/x", "SECRET_KEY": "a" * 40, "AUTH_MODE": "none"}
    done = subprocess.run([str(BIN / "python"), "-c", "import api; api.create_app()"], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert line["variable"] == "AUTH_MODE" and "production" in line["message"]
