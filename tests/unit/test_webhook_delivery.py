"""worker/webhooks.py against a real HTTP receiver on 127.0.0.1 (scripted answers) and a real
redis-server: one attempt at a time, driven directly (no Celery)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from common.signing import webhook_secret
from jobs import JobStatus
from jobs.resource import job_resource
from jobs.store import JobStore, NewJob
from worker import webhooks
from worker.webhooks import Config

SECRET_KEY = "a-secret-key-for-the-webhook-tests-only"
DEFAULT_SECRET = webhook_secret(SECRET_KEY, "")
OWNER = "0123456789abcdef"
SCHEDULE = (1, 2, 3)

Answer = Callable[[BaseHTTPRequestHandler], None]


def reply(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return answer


class Receiver:
    """A webhook receiver: records every request, answers each with the next scripted answer
    (200 once the script is used up)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: list[Answer] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "body": body,
                                              "headers": dict(self.headers.items())})
                    answer = receiver.script.pop(0) if receiver.script else reply(200)
                answer(self)

            do_GET = do_POST  # noqa: N815 - a followed redirect would arrive as a GET

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def store(redis_db) -> JobStore:
    client = redis_db.client()
    client.flushdb()
    return JobStore(client, result_ttl_seconds=3600, tombstone_ttl_seconds=3600)


def config(allow_private: bool = True, attempt_timeout: float = 2) -> Config:
    return Config(SECRET_KEY, DEFAULT_SECRET, SCHEDULE, allow_private, attempt_timeout)


def finished_job(store: JobStore, url: str, status: JobStatus = JobStatus.SUCCEEDED,
                 owner: str = OWNER) -> str:
    new = NewJob(format="json", options={}, input_filename="orders.xml", input_size=42,
                 input_sha256="0" * 64, owner=owner, tag="nightly",
                 metadata={"batch": 7}, webhook_url=url)
    store.create(new)
    if status == "cancelled":
        store.discard(new.id, owner)
        return new.id
    _, run_id = store.start(new.id, owner, "w1", new.dispatch, 3, {"code": "WORKER_LOST"})
    if status == JobStatus.SUCCEEDED:
        store.finish(new.id, owner, run_id, JobStatus.SUCCEEDED,
                     result={"size_bytes": 10, "content_type": "application/json"})
    else:
        store.finish(new.id, owner, run_id, JobStatus.FAILED,
                     error={"code": "XML_PARSE_ERROR", "message": "bad", "line": 1,
                            "column": 2})
    return new.id


# -- what is sent


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_a_signed_event_per_final_status(store, receiver, status, caplog):
    job_id = finished_job(store, receiver.url(), status)
    before = job_resource(store.get(job_id))
    caplog.set_level(logging.INFO, logger="worker.webhooks")

    result = webhooks.attempt(store, config(), job_id, 0)

    assert result.outcome == webhooks.Outcome.DELIVERED and result.status_code == 200
    [sent] = receiver.requests
    headers = {name.lower(): value for name, value in sent["headers"].items()}
    secret = webhook_secret(SECRET_KEY, OWNER)
    event = Webhook(secret).verify(sent["body"], headers)
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"] == f"msg_{job_id}"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 10
    assert "its-convert-xml" in headers["user-agent"]
    assert set(event) == {"type", "timestamp", "data"}
    assert event["type"] == f"job.{status}"
    assert event["timestamp"] == before["finished_at"]
    assert event["data"] == before
    assert event["data"]["tag"] == "nightly" and event["data"]["metadata"] == {"batch": 7}
    assert sent["body"] == json.dumps(event, separators=(",", ":")).encode()  # compact
    with pytest.raises(Exception):  # noqa: B017 - any verification error
        Webhook(webhook_secret(SECRET_KEY, "another-client")).verify(sent["body"], headers)

    job = job_resource(store.get(job_id))
    assert job["webhook"] == {"url": receiver.url(), "status": "delivered", "attempts": 1,
                              "last_status_code": 200}
    [line] = [r for r in caplog.records if r.name == "worker.webhooks"]
    assert (line.job_id, line.attempt, line.status_code, line.outcome) == (
        job_id, 1, 200, "delivered")
    assert secret not in caplog.text and headers["webhook-signature"] not in caplog.text


def test_without_an_owner_the_webhook_secret_signs(store, receiver):
    job_id = finished_job(store, receiver.url(), owner="")
    assert webhooks.attempt(store, config(), job_id, 0).outcome == webhooks.Outcome.DELIVERED
    [sent] = receiver.requests
    Webhook(DEFAULT_SECRET).verify(sent["body"], sent["headers"])


def test_every_attempt_is_the_same_event(store, receiver):
    receiver.script = [reply(503)]
    job_id = finished_job(store, receiver.url())
    webhooks.attempt(store, config(), job_id, 0)
    webhooks.attempt(store, config(), job_id, 1)
    first, second = receiver.requests
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
    for sent in (first, second):
        Webhook(webhook_secret(SECRET_KEY, OWNER)).verify(sent["body"], sent["headers"])


# -- what comes next


@pytest.mark.parametrize("code", [500, 503, 429])
def test_a_server_error_or_429_is_retried_on_the_schedule(store, receiver, code):
    receiver.script = [reply(code), reply(code)]
    job_id = finished_job(store, receiver.url())

    first = webhooks.attempt(store, config(), job_id, 0)
    assert (first.outcome, first.status_code, first.retry_in) == (webhooks.Outcome.RETRY, code, 1)
    assert store.get(job_id).webhook == {"status": "pending", "attempts": 1,
                                         "last_status_code": code}
    second = webhooks.attempt(store, config(), job_id, 1)
    assert (second.outcome, second.retry_in) == (webhooks.Outcome.RETRY, 2)
    assert store.get(job_id).webhook["attempts"] == 2


def test_the_schedule_used_up_fails_the_delivery(store, receiver):
    receiver.script = [reply(500)]
    job_id = finished_job(store, receiver.url())
    result = webhooks.attempt(store, config(), job_id, len(SCHEDULE))
    assert (result.outcome, result.retry_in) == (webhooks.Outcome.SCHEDULE_USED_UP, None)
    assert store.get(job_id).webhook == {"status": "failed", "attempts": len(SCHEDULE) + 1,
                                         "last_status_code": 500}


def test_deliver_asks_the_task_to_retry_with_the_next_delay(store, receiver):
    receiver.script = [reply(500), reply(200)]
    job_id = finished_job(store, receiver.url())
    asked: list[tuple] = []
    settings = type("S", (), {"secret_key": SECRET_KEY, "webhook_secret": DEFAULT_SECRET,
                              "webhook_retry_schedule": SCHEDULE,
                              "allow_private_addresses": True, "webhook_attempt_timeout": 2})()
    later = lambda countdown, retries_done: asked.append((countdown, retries_done))  # noqa: E731
    webhooks.deliver(store, None, settings, job_id, 0, later)
    assert asked == [(1, 1)]  # after SCHEDULE[0] seconds, one attempt made
    webhooks.deliver(store, None, settings, job_id, 1, later)
    assert asked == [(1, 1)]
    assert store.get(job_id).webhook == {"status": "delivered", "attempts": 2,
                                         "last_status_code": 200}


@pytest.mark.parametrize(("code", "outcome"), [(410, "gone"), (400, "rejected"),
                                               (404, "rejected"), (401, "rejected")])
def test_410_and_other_client_errors_stop(store, receiver, code, outcome):
    receiver.script = [reply(code)]
    job_id = finished_job(store, receiver.url())
    result = webhooks.attempt(store, config(), job_id, 0)
    assert (result.outcome, result.status_code, result.retry_in) == (outcome, code, None)
    assert store.get(job_id).webhook == {"status": "failed", "attempts": 1,
                                         "last_status_code": code}


def test_a_redirect_is_not_followed(store, receiver):
    receiver.script = [reply(302, headers={"Location": receiver.url("/elsewhere")})]
    job_id = finished_job(store, receiver.url())
    result = webhooks.attempt(store, config(), job_id, 0)
    assert (result.outcome, result.status_code) == (webhooks.Outcome.REJECTED, 302)
    time.sleep(0.2)
    assert [sent["path"] for sent in receiver.requests] == ["/hook"]
    assert store.get(job_id).webhook["status"] == "failed"


def test_at_most_64_kib_of_an_answer_is_read(store, receiver):
    total = 10 * 1024 * 1024
    written: list[int] = []
    done = threading.Event()

    def huge_and_slow(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(total))
        handler.end_headers()
        sent, chunk = 0, b"x" * 65536
        try:
            while sent < total:
                handler.wfile.write(chunk)
                handler.wfile.flush()
                sent += len(chunk)
                time.sleep(0.02)  # all of it would take over 3 s
        except OSError:
            pass
        finally:
            written.append(sent)
            done.set()

    receiver.script = [huge_and_slow]
    job_id = finished_job(store, receiver.url())
    started = time.monotonic()
    result = webhooks.attempt(store, config(), job_id, 0)
    elapsed = time.monotonic() - started
    assert (result.outcome, result.status_code) == (webhooks.Outcome.DELIVERED, 200)
    assert elapsed < 1.5, elapsed
    assert done.wait(10), "the receiver was still writing: the worker kept reading"
    assert written[0] < total


def test_a_silent_receiver_is_retried(store, receiver):
    def silent(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(2)

    receiver.script = [silent]
    job_id = finished_job(store, receiver.url())
    started = time.monotonic()
    result = webhooks.attempt(store, config(attempt_timeout=0.3), job_id, 0)
    assert time.monotonic() - started < 1.5
    assert (result.outcome, result.status_code, result.error) == (
        webhooks.Outcome.RETRY, None, "Timeout")
    assert store.get(job_id).webhook == {"status": "pending", "attempts": 1,
                                         "last_status_code": None}


def test_a_connection_refused_is_retried(store, receiver):
    url = receiver.url()
    receiver.close()
    job_id = finished_job(store, url)
    result = webhooks.attempt(store, config(), job_id, 0)
    assert (result.outcome, result.error) == (webhooks.Outcome.RETRY, "ConnectionError")


def test_a_private_address_is_refused_without_a_request(store, receiver):
    job_id = finished_job(store, receiver.url())
    result = webhooks.attempt(store, config(allow_private=False), job_id, 0)
    assert result.outcome == webhooks.Outcome.REFUSED and result.retry_in is None
    time.sleep(0.2)
    assert receiver.requests == []
    assert store.get(job_id).webhook == {"status": "failed", "attempts": 0,
                                         "last_status_code": None}


def test_a_job_that_is_gone_needs_nothing(store, receiver):
    job_id = finished_job(store, receiver.url())
    store.discard(job_id, OWNER)  # a finished job deleted
    assert webhooks.attempt(store, config(), job_id, 0).outcome == webhooks.Outcome.NOTHING
    assert receiver.requests == []
    assert store.get(job_id) is None
