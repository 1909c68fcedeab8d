"""Webhooks end to end (the real API, worker and Redis; AUTH_MODE=api_key, retry schedule 1,1,1):
a finished job's event reaches a receiver on 127.0.0.1, signed with its client's webhook secret,
retried after a 5xx, never after a 410; the job shows how its delivery went. Without
WEBHOOK_ALLOW_PRIVATE a loopback URL is refused at submission."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from standardwebhooks import Webhook

from jobs import keys
from testkit.jobs_api import accepted_job, error_of, submit_file
from testkit.stack import Stack
from testkit.tcp_server import TcpServer
from testkit.throttle import Throttle
from testkit.waiting import wait_for

DOC = b"<orders><order id='1'><item>tea</item></order><order id='2'/></orders>"
MALFORMED = b"<a><b></a>"


class Receiver:
    """Records every request per path; answers each with the next status scripted for its path
    (200 once the script is used up)."""

    def __init__(self) -> None:
        self.received: dict[str, list[dict]] = {}
        self.script: dict[str, list[int]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.received.setdefault(self.path, []).append(
                        {"body": body, "headers": dict(self.headers.items()),
                         "at": time.monotonic()})
                    script = receiver.script.get(self.path) or []
                    status = script.pop(0) if script else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def hook(self, name: str, *statuses: int) -> tuple[str, str]:
        """A fresh path answering `statuses` in turn: (path, URL)."""
        path = f"/hook/{name}-{time.monotonic_ns()}"
        self.script[path] = list(statuses)
        return path, f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def requests_to(self, path: str) -> list[dict]:
        with self.lock:
            return list(self.received.get(path, []))

    def wait(self, path: str, count: int, timeout: float = 30) -> list[dict]:
        return wait_for(lambda: len(got := self.requests_to(path)) >= count and got, timeout,
                        f"{count} webhook request(s) to {path} did not arrive")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def client(keyed_stack) -> dict:
    return keyed_stack.key(f"hooks-{time.monotonic_ns()}")


def submit(stack, headers: dict, url: str, doc: bytes = DOC, **fields: str) -> dict:
    response = requests.post(stack.url("/jobs"), files={"file": ("orders.xml", doc)},
                             data={"webhook_url": url, **fields}, headers=headers, timeout=60)
    return accepted_job(response)


def delivery_settled(stack, headers: dict, job_id: str, timeout: float = 30) -> dict:
    """The job once its webhook is delivered or has failed."""
    return wait_for(lambda: (job := stack.get_job(job_id, headers))["webhook"]["status"] in (
        "delivered", "failed") and job, timeout, f"job {job_id}'s webhook did not settle",
        interval=0.1)


def verified(sent: dict, secret: str) -> dict:
    headers = {name.lower(): value for name, value in sent["headers"].items()}
    assert headers["content-type"] == "application/json"
    return Webhook(secret).verify(sent["body"], headers)


def without_webhook(resource: dict) -> dict:
    return {name: value for name, value in resource.items() if name != "webhook"}


def test_a_webhook_is_retried_after_a_500_and_signed_with_the_clients_secret(
        keyed_stack, client, receiver):
    path, url = receiver.hook("retried", 500, 200)
    job = submit(keyed_stack, client["headers"], url, tag="nightly",
                 metadata=json.dumps({"batch": 7, "source": "erp"}))
    assert job["webhook"] == {"url": url, "status": "pending", "attempts": 0,
                              "last_status_code": None}

    first, second = receiver.wait(path, 2)
    finished = delivery_settled(keyed_stack, client["headers"], job["id"])
    assert finished["status"] == "succeeded"
    assert finished["webhook"] == {"url": url, "status": "delivered", "attempts": 2,
                                   "last_status_code": 200}
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
    assert second["at"] - first["at"] >= 0.9  # WEBHOOK_RETRY_SCHEDULE=1,…

    for sent in (first, second):
        event = verified(sent, client["webhook_secret"])
        assert event["type"] == "job.succeeded"
        assert event["timestamp"] == finished["finished_at"]
        assert without_webhook(event["data"]) == without_webhook(finished)
        assert event["data"]["tag"] == "nightly"
        assert event["data"]["metadata"] == {"batch": 7, "source": "erp"}
    # Each attempt carries the delivery as it stood before it.
    assert second["body"] != first["body"]
    assert json.loads(second["body"])["data"]["webhook"] == {
        "url": url, "status": "pending", "attempts": 1, "last_status_code": 500}
    with pytest.raises(Exception):  # noqa: B017 - another client's secret does not verify
        Webhook(keyed_stack.key(f"other-{time.monotonic_ns()}")["webhook_secret"]).verify(
            second["body"], second["headers"])

    # One JSON line per attempt in the webhooks worker's log (the conversion worker makes
    # none); never the secret or a signature.
    lines = [json.loads(line) for line in keyed_stack.webhooks.lines()
             if job["id"] in line and '"worker.webhooks"' in line]
    assert [(line["attempt"], line["status_code"], line["outcome"]) for line in lines] == [
        (1, 500, "retry"), (2, 200, "delivered")]
    assert not [line for line in keyed_stack.worker.lines() if '"worker.webhooks"' in line]
    log_text = "\n".join(keyed_stack.worker.lines() + keyed_stack.webhooks.lines())
    assert client["webhook_secret"] not in log_text
    for sent in (first, second):
        assert sent["headers"]["webhook-signature"] not in log_text


def test_a_410_stops_delivery_after_one_attempt(keyed_stack, client, receiver):
    path, url = receiver.hook("gone", 410)
    job = submit(keyed_stack, client["headers"], url)
    finished = delivery_settled(keyed_stack, client["headers"], job["id"])
    assert finished["webhook"] == {"url": url, "status": "failed", "attempts": 1,
                                   "last_status_code": 410}
    time.sleep(2.5)  # past the first retry's delay: none comes
    assert len(receiver.requests_to(path)) == 1
    assert keyed_stack.get_job(job["id"], client["headers"])["webhook"]["attempts"] == 1


def test_a_failed_job_sends_job_failed(keyed_stack, client, receiver):
    path, url = receiver.hook("failed")
    job = submit(keyed_stack, client["headers"], url, doc=MALFORMED)
    [sent] = receiver.wait(path, 1)
    event = verified(sent, client["webhook_secret"])
    assert event["type"] == "job.failed"
    assert event["data"]["status"] == "failed"
    assert event["data"]["error"]["code"] == "XML_PARSE_ERROR"
    finished = delivery_settled(keyed_stack, client["headers"], job["id"])
    assert without_webhook(event["data"]) == without_webhook(finished)
    assert finished["webhook"]["status"] == "delivered"


def test_a_cancelled_queued_job_sends_job_cancelled(keyed_stack, client, receiver, samples):
    # The stack's one worker process is busy with a big job (slowed to a tenth, so that it
    # runs for seconds): the next job waits, queued.
    with Throttle(keyed_stack.worker):
        with open(samples["big"], "rb") as handle:
            big = accepted_job(requests.post(keyed_stack.url("/jobs"),
                                             files={"file": ("big.xml", handle)},
                                             headers=client["headers"], timeout=120))
        wait_for(lambda: keyed_stack.get_job(big["id"], client["headers"])["progress"][
            "bytes_done"] > 0, 60, "the big job never started", interval=0.05)
        path, url = receiver.hook("cancelled")
        job = submit(keyed_stack, client["headers"], url)
        response = requests.delete(keyed_stack.url(f"/jobs/{job['id']}"),
                                   headers=client["headers"], timeout=10)
        assert response.status_code == 202 and response.json()["status"] == "cancelled"
    requests.delete(keyed_stack.url(f"/jobs/{big['id']}"), headers=client["headers"],
                    timeout=10)  # frees the worker for the webhook

    [sent] = receiver.wait(path, 1)
    event = verified(sent, client["webhook_secret"])
    assert event["type"] == "job.cancelled"
    assert event["data"]["id"] == job["id"] and event["data"]["status"] == "cancelled"
    assert event["data"]["started_at"] is None
    finished = delivery_settled(keyed_stack, client["headers"], job["id"])
    assert finished["webhook"]["status"] == "delivered"


def test_a_loopback_url_is_refused_without_allow_private(stack, samples):
    before = stack.job_dirs()
    response = submit_file(stack, samples["small"],
                           data={"webhook_url": "http://127.0.0.1:9/hook"})
    error = error_of(response, 400, "INVALID_WEBHOOK_URL")
    assert error["details"]["parameter"] == "webhook_url"
    response = submit_file(stack, samples["small"],
                           params={"webhook_url": "http://169.254.169.254/latest/meta-data"})
    error_of(response, 400, "INVALID_WEBHOOK_URL")
    assert stack.job_dirs() == before  # nothing stored, nothing recorded
    records = stack.client()
    assert not any(records.hget(key, "webhook_url")
                   for key in records.scan_iter(keys.job("*")))


# -- webhooks cannot hold conversions (a stack of its own: short deadline, a cap of 2 per key,
# a proxy in the environment of every process)


class SlowReceiver(TcpServer):
    """A raw TCP receiver that reads the request, then answers `HTTP/1.1 200 OK…` one byte a
    second; records each connection's (opened, closed) times and the most open at once."""

    def __init__(self) -> None:
        self.connections: list[tuple[float, float]] = []
        self.open = self.most_open = 0
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        opened = time.monotonic()
        with self.lock:
            self.open += 1
            self.most_open = max(self.most_open, self.open)
        try:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                conn.sendall(bytes([byte]))
                if select.select([conn], [], [], 1)[0]:  # the worker hung up: seen at once
                    return
        except OSError:
            pass
        finally:
            conn.close()
            with self.lock:
                self.open -= 1
                self.connections.append((opened, time.monotonic()))

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/slow/{name}"


@pytest.fixture(scope="module")
def hostile(redis_server, tmp_path_factory):
    """A stack whose every process has HTTP(S)_PROXY pointing at a recording receiver (and no
    NO_PROXY): a delivery that used it would show there."""
    proxy = Receiver()
    proxy_url = f"http://127.0.0.1:{proxy.server.server_address[1]}"
    env = {"WEBHOOK_ALLOW_PRIVATE": "true", "WEBHOOK_RETRY_SCHEDULE": "1,1",
           "WEBHOOK_ATTEMPT_TIMEOUT": "2", "WEBHOOK_MAX_PER_KEY": "2",
           "WEBHOOK_CONCURRENCY": "4", "RATE_LIMIT_PER_MINUTE": "1000",
           "MAX_ACTIVE_JOBS": "50", "NO_PROXY": "", "no_proxy": ""}
    env.update({name: proxy_url for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                                             "https_proxy", "ALL_PROXY", "all_proxy")})
    with Stack(tmp_path_factory.mktemp("hostile"), redis=redis_server, keys=True,
               name="hostile", env=env) as stack:
        yield stack, proxy
    proxy.close()


def test_slow_receivers_hold_no_conversion_and_no_other_clients_webhook(hostile, receiver):
    stack, proxy = hostile
    slow = SlowReceiver()
    try:
        noisy, quiet = stack.key(f"noisy-{time.monotonic_ns()}"), stack.key(
            f"quiet-{time.monotonic_ns()}")
        # Eight jobs of one client whose webhook answers one byte a second.
        noisy_jobs = [submit(stack, noisy["headers"], slow.url(str(n))) for n in range(8)]
        wait_for(lambda: len(slow.connections) + slow.open >= 2, 30,
                 "the slow receiver was never called")

        # Meanwhile a conversion runs at once on the stack's one conversion process …
        started = time.monotonic()
        response = requests.post(stack.url("/jobs"), params={"wait": "20"},
                                 files={"file": ("orders.xml", DOC)},
                                 headers=quiet["headers"], timeout=60)
        assert response.status_code == 200 and response.json()["status"] == "succeeded"
        assert time.monotonic() - started < 10
        # … and another client's webhook is delivered promptly.
        path, url = receiver.hook("quiet")
        started = time.monotonic()
        job = submit(stack, quiet["headers"], url)
        receiver.wait(path, 1, timeout=10)
        assert time.monotonic() - started < 6
        assert delivery_settled(stack, quiet["headers"], job["id"])["webhook"][
            "status"] == "delivered"

        # Every slow attempt ended at its 2 s deadline and was retried on the schedule (1,1):
        # three attempts each, never more than two of that client at once.
        for noisy_job in noisy_jobs:
            finished = delivery_settled(stack, noisy["headers"], noisy_job["id"], timeout=120)
            assert finished["webhook"] == {"url": noisy_job["webhook"]["url"],
                                           "status": "failed", "attempts": 3,
                                           "last_status_code": None}
        wait_for(lambda: len(slow.connections) == 24, 10, "24 attempts were not all closed")
        assert max(closed - opened for opened, closed in slow.connections) < 2.6
        assert slow.most_open <= 2
        lines = [json.loads(line) for line in stack.webhooks.lines()
                 if '"worker.webhooks"' in line and '"retry"' in line]
        assert lines and all(line["error"] == "Timeout" for line in lines
                             if line["job_id"] in {j["id"] for j in noisy_jobs})
        # Nothing went through the proxy of the environment.
        assert proxy.received == {}
        # The live workers are the conversion workers (capacity for jobs): the webhooks
        # worker is not one of them.
        live = requests.get(stack.url("/health/ready"), timeout=10).json()["workers"]
        assert live and all(w["hostname"].startswith("worker-") for w in live)
        # The conversion worker delivered nothing; every line of the webhooks worker is JSON.
        assert not [line for line in stack.worker.lines() if '"worker.webhooks"' in line]
        assert all(json.loads(line) for line in stack.webhooks.lines())
    finally:
        slow.close()
