"""One attempt's connection (worker/outbound_http.py through worker/webhooks.attempt) against
real receivers on loopback — plain TCP servers that answer as slowly or as strangely as a hostile
receiver would, an HTTPS one with a certificate for a name, and a proxy that records what
reaches it — and a real redis-server for the job records and the slots.

DNS is the one part faked (tests/unit/webhook_dns.py): no DNS server runs here."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from standardwebhooks import Webhook
from test_webhook_delivery import DEFAULT_SECRET, OWNER, SCHEDULE, SECRET_KEY, finished_job
from webhook_dns import FakeDns

from common.outbound_urls import check_url
from common.signing import webhook_secret
from jobs.store import JobStore
from jobs.webhook_slots import WebhookSlots
from testkit.tcp_server import TcpServer, read_head
from worker import webhooks
from worker.webhooks import Config, Outcome

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class Server(TcpServer):
    """A TCP server on 127.0.0.1: each connection handled by `answer(conn, request_bytes)` in
    a thread, after the request's head and body arrived; records each request, and how many
    connections were open at most at once."""

    def __init__(self, answer: Callable[[socket.socket, bytes], None] = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer or (lambda conn, request: conn.sendall(OK))
        self.tls = tls
        self.requests: list[bytes] = []
        self.server_names: list[str | None] = []
        self.open = self.most_open = 0
        super().__init__()

    def handle(self, conn: socket.socket) -> None:
        with self.lock:
            self.open += 1
            self.most_open = max(self.most_open, self.open)
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            request = read_head(conn)
            if not request:
                return
            head, _, body = request.partition(b"\r\n\r\n")
            length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), b"0"))
            while len(body) < length:
                body += conn.recv(65536)
            with self.lock:
                self.requests.append(request)
            self.answer(conn, request)
        except OSError:
            pass
        finally:
            conn.close()
            with self.lock:
                self.open -= 1

    def url(self, host: str = "127.0.0.1", path: str = "/hook", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"



def headers_of(request: bytes) -> dict[str, str]:
    head = request.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
    return {name.strip().lower(): value.strip() for name, _, value in
            (line.partition(":") for line in head)}


@pytest.fixture
def store(redis_db) -> JobStore:
    client = redis_db.client()
    client.flushdb()
    return JobStore(client, result_ttl_seconds=3600, tombstone_ttl_seconds=3600)


@pytest.fixture
def servers():
    made: list[Server] = []

    def make(*args, **kwargs) -> Server:
        made.append(Server(*args, **kwargs))
        return made[-1]

    yield make
    for server in made:
        server.close()


def config(allow_private: bool = True, attempt_timeout: float = 2,
           tls: ssl.SSLContext | None = None) -> Config:
    return Config(SECRET_KEY, DEFAULT_SECRET, SCHEDULE, allow_private, attempt_timeout, tls)


# -- one deadline for the whole attempt


def one_byte_a_second(conn: socket.socket, request: bytes) -> None:
    for byte in OK:
        conn.sendall(bytes([byte]))
        time.sleep(1)


def test_a_receiver_answering_one_byte_a_second_is_cut_off_at_the_deadline(store, servers):
    server = servers(one_byte_a_second)
    job_id = finished_job(store, server.url())
    started = time.monotonic()
    result = webhooks.attempt(store, config(attempt_timeout=2), job_id, 0)
    elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 2.6, elapsed  # not one read timeout per byte: the whole attempt
    assert (result.outcome, result.error, result.retry_in) == (Outcome.RETRY, "Timeout",
                                                               SCHEDULE[0])
    assert store.get(job_id).webhook == {"status": "pending", "attempts": 1,
                                         "last_status_code": None}


def test_a_receiver_that_never_reads_the_request_is_cut_off_too(store, servers):
    listener = socket.create_server(("127.0.0.1", 0), backlog=1)  # accepts, never reads
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        port = listener.getsockname()[1]
        job_id = finished_job(store, f"http://127.0.0.1:{port}/hook")
        started = time.monotonic()
        result = webhooks.attempt(store, config(attempt_timeout=1), job_id, 0)
        assert time.monotonic() - started < 1.6
        assert (result.outcome, result.error) == (Outcome.RETRY, "Timeout")
    finally:
        listener.close()


def test_interim_answers_are_skipped_and_a_non_http_answer_is_retried(store, servers):
    interim = servers(lambda conn, _: conn.sendall(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"))
    job_id = finished_job(store, interim.url())
    assert webhooks.attempt(store, config(), job_id, 0).status_code == 204
    garbage = servers(lambda conn, _: conn.sendall(b"SSH-2.0-OpenSSH\r\n\r\n"))
    job_id = finished_job(store, garbage.url())
    result = webhooks.attempt(store, config(), job_id, 0)
    assert (result.outcome, result.error) == (Outcome.RETRY, "BadAnswer")


# -- the name checked is the name connected to; the address checked is the address connected to


def test_faß_is_checked_and_connected_to_as_the_same_name(store, servers, monkeypatch):
    server = servers()
    dns = FakeDns(monkeypatch, {"xn--fa-hia.example": ["127.0.0.1"],
                                "fass.example": ["127.0.0.2"]})
    url = server.url("faß.example")
    assert check_url(url, allow_private=True) == url
    job_id = finished_job(store, url)
    assert webhooks.attempt(store, config(), job_id, 0).outcome == Outcome.DELIVERED
    assert dns.asked == ["xn--fa-hia.example"]  # once, by the attempt; never fass.example
    [request] = server.requests
    assert request.startswith(b"POST /hook HTTP/1.1\r\n")
    assert headers_of(request)["host"] == f"xn--fa-hia.example:{server.port}"


def test_the_name_is_resolved_once_per_attempt_and_the_checked_address_used(
        store, servers, monkeypatch):
    server = servers()
    dns = FakeDns(monkeypatch, {"hooks.example": ["127.0.0.1"]})
    real = dns.table

    class Rebinding(dict):  # a second question would be answered with another address
        def __contains__(self, name):
            return name in real

        def __getitem__(self, name):
            answer = real[name] if dns.asked.count(name) <= 1 else ["10.0.0.7"]
            return answer

    dns.table = Rebinding()
    job_id = finished_job(store, server.url("hooks.example"))
    assert webhooks.attempt(store, config(), job_id, 0).outcome == Outcome.DELIVERED
    assert dns.asked == ["hooks.example"]
    assert headers_of(server.requests[0])["host"] == f"hooks.example:{server.port}"


def test_public_at_submission_and_private_later_is_refused_without_a_request(
        store, servers, monkeypatch):
    server = servers()
    dns = FakeDns(monkeypatch, {"hooks.example": ["93.184.216.34"]})
    url = server.url("hooks.example")
    assert check_url(url, allow_private=False) == url  # as the API checked it
    job_id = finished_job(store, url)
    dns.table["hooks.example"] = ["127.0.0.1"]  # then the name moves to the receiver here
    result = webhooks.attempt(store, config(allow_private=False), job_id, 0)
    assert result.outcome == Outcome.REFUSED and "non-public" in result.error
    time.sleep(0.2)
    assert server.requests == []
    assert store.get(job_id).webhook == {"status": "failed", "attempts": 0,
                                         "last_status_code": None}


def test_an_address_refusing_connections_is_skipped_for_the_next_checked_one(
        store, servers, monkeypatch):
    server = servers()
    FakeDns(monkeypatch, {"hooks.example": ["127.0.0.3", "127.0.0.1"]})  # nothing on .3
    job_id = finished_job(store, server.url("hooks.example"))
    assert webhooks.attempt(store, config(), job_id, 0).outcome == Outcome.DELIVERED


# -- nothing from the environment


def test_proxy_variables_and_netrc_are_ignored(store, servers, monkeypatch, tmp_path):
    proxy = servers()  # would receive the request (and answer 200) if it were used as a proxy
    receiver = servers()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.setenv(name, proxy.url(path=""))
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("no_proxy", "")
    (tmp_path / ".netrc").write_text("machine 127.0.0.1 login alice password s3cret\n")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))

    job_id = finished_job(store, receiver.url())
    assert webhooks.attempt(store, config(), job_id, 0).outcome == Outcome.DELIVERED
    time.sleep(0.2)
    assert proxy.requests == []
    [request] = receiver.requests
    assert request.startswith(b"POST /hook HTTP/1.1\r\n")  # origin form, not a proxy's
    assert "authorization" not in headers_of(request)


# -- https: SNI and the certificate for the name, at the pinned address


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Path:
    """A CA and a certificate for hooks.example signed by it (openssl)."""
    root = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=root, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test ca",
            "-keyout", "ca.key", "-out", "ca.pem", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=hooks.example",
            "-keyout", "hooks.key", "-out", "hooks.csr")
    (root / "ext").write_text("subjectAltName=DNS:hooks.example\n")
    openssl("x509", "-req", "-in", "hooks.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "ext", "-out", "hooks.pem")
    return root


def tls_receiver(servers, certificates: Path) -> Server:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates / "hooks.pem", certificates / "hooks.key")
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    server = servers(tls=context)
    server.server_names = names
    return server


def trusting(certificates: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificates / "ca.pem"))


def test_https_sends_sni_and_checks_the_certificate_for_the_name(
        store, servers, certificates, monkeypatch):
    server = tls_receiver(servers, certificates)
    dns = FakeDns(monkeypatch, {"hooks.example": ["127.0.0.1"]})
    job_id = finished_job(store, server.url("hooks.example", scheme="https"))
    result = webhooks.attempt(store, config(tls=trusting(certificates)), job_id, 0)
    assert (result.outcome, result.status_code) == (Outcome.DELIVERED, 200)
    assert dns.asked == ["hooks.example"]
    assert server.server_names == ["hooks.example"]
    [request] = server.requests
    headers = headers_of(request)
    assert headers["host"] == f"hooks.example:{server.port}"
    body = request.partition(b"\r\n\r\n")[2]
    Webhook(webhook_secret(SECRET_KEY, OWNER)).verify(body, headers)


def test_https_to_a_name_the_certificate_does_not_cover_fails_the_attempt(
        store, servers, certificates, monkeypatch):
    server = tls_receiver(servers, certificates)
    FakeDns(monkeypatch, {"other.example": ["127.0.0.1"]})
    job_id = finished_job(store, server.url("other.example", scheme="https"))
    result = webhooks.attempt(store, config(tls=trusting(certificates)), job_id, 0)
    assert (result.outcome, result.error) == (Outcome.RETRY, "TLSError")
    assert server.requests == []
    # and the address alone is no name the certificate covers either
    job_id = finished_job(store, server.url("127.0.0.1", scheme="https"))
    result = webhooks.attempt(store, config(tls=trusting(certificates)), job_id, 0)
    assert (result.outcome, result.error) == (Outcome.RETRY, "TLSError")


# -- at most WEBHOOK_MAX_PER_KEY deliveries of one client at once


def test_a_delivery_over_its_clients_cap_waits_without_a_request(store, servers, redis_db):
    server = servers()
    slots = WebhookSlots(redis_db.client(), per_key=2, lease_seconds=30)
    held = [slots.take(OWNER)[0], slots.take(OWNER)[0]]
    assert all(held)
    job_id = finished_job(store, server.url())
    asked: list[tuple] = []
    settings = type("S", (), {"secret_key": SECRET_KEY, "webhook_secret": DEFAULT_SECRET,
                              "webhook_retry_schedule": SCHEDULE,
                              "allow_private_addresses": True, "webhook_attempt_timeout": 5})()
    later = lambda countdown, retries_done: asked.append((countdown, retries_done))  # noqa: E731

    result = webhooks.deliver(store, slots, settings, job_id, 1, later)
    assert result.outcome == Outcome.WAIT and server.requests == []
    [(countdown, retries_done)] = asked
    assert 1 <= countdown <= 6 and retries_done == 1  # a wait is not an attempt
    assert store.get(job_id).webhook is None  # nothing recorded: no attempt was made
    # another client is not held back
    other = finished_job(store, server.url(), owner="another-client")
    assert webhooks.deliver(store, slots, settings, other, 0, later).outcome == (
        Outcome.DELIVERED)

    slots.give_back(OWNER, held[0])
    assert webhooks.deliver(store, slots, settings, job_id, 1, later).outcome == (
        Outcome.DELIVERED)
    assert slots.in_use(OWNER) == 1  # its slot given back after the attempt


def test_a_lease_lapses_by_itself(redis_db):
    slots = WebhookSlots(redis_db.client(), per_key=1, lease_seconds=0.3)
    token, _ = slots.take("a-client")
    assert token
    taken, wait = slots.take("a-client")
    assert taken is None and 0 < wait <= 0.3
    time.sleep(0.4)  # its process died mid-attempt: the slot comes back anyway
    assert slots.take("a-client")[0]
