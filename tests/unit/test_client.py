"""The client library's own parts (client/): option mapping, Retry-After, errors, the streamed
upload body, progress lines; and its HTTP behaviour — retries after 503/429 with the same
Idempotency-Key, paging, polling, downloads — against a tiny scripted http.server on
loopback (the real service is tests/integration/test_client.py's)."""

from __future__ import annotations

import dataclasses
import email.utils
import gzip
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import converter
import converter.cli
from client import ApiError, Client, JobFailed, ServerUnreachable, parse_retry_after
from client import cli as client_cli
from client import options as client_options
from client.errors import error_from_body
from client.progress import Lines
from client.retry import Backoff, retry_delay
from client.upload import CHUNK_BYTES, Upload
from converter import Limits
from converter.exit_status import ExitStatus
from converter.options import parse_options
from optionspec.flags import options_from_args

REPO = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------------------ options


def test_formats_are_the_converters():
    assert set(client_options.FORMATS) == set(converter.FORMATS)


def _flags(parser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def _subparser(parser, name: str):
    (commands,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return commands.choices[name]


def test_submit_takes_every_flag_of_convert():
    """Every conversion option; not the local limits (`--max-attributes`, ...): the service
    holds every job to its own (docs/limits.md)."""
    convert = _subparser(converter.cli._parser(), "convert")
    submit = _subparser(client_cli._parser(), "submit")
    limits = {"--" + field.name.replace("_", "-") for field in dataclasses.fields(Limits)}
    assert limits <= _flags(convert)
    assert _flags(convert) - limits <= _flags(submit)
    assert not limits & _flags(submit)


FLAG_SETS = [
    [],
    ["--namespaces", "strip", "--types", "infer"],
    ["--attr-prefix", "_", "--text-key", "value"],
    ["--force-list", "item,tag", "--indent", "4"],
    ["--force-list", "item", "--force-list", "tag"],
    ["--force-list", "item", "tag"],
    ["--keep-whitespace", "--max-depth", "50"],
    ["--record-path", "orders/order", "--separator", " | ", "--include-attributes"],
    ["--attr-prefix", ""],
]


@pytest.mark.parametrize("flags", FLAG_SETS, ids=[" ".join(f) or "none" for f in FLAG_SETS])
def test_flags_mean_what_convert_makes_of_them(flags):
    """The same flags give the same options as `xmlconv convert`, and those options survive
    the trip through query parameters into the server's parser unchanged."""
    converted = converter.cli._parser().parse_args(["convert", "x.xml", "--to", "json", *flags])
    expected = {name: getattr(converted, name) for name in converter.OPTION_NAMES
                if getattr(converted, name) is not None}
    submitted = client_cli._parser().parse_args(["submit", "x.xml", *flags])
    options = options_from_args(submitted)
    assert options == expected
    params = client_options.to_params(options)
    assert all(isinstance(value, str) for value in params.values())
    assert parse_options(params) == parse_options(options)


def test_option_values_are_encoded_as_the_api_reads_them():
    assert client_options.to_params({
        "force_list": ["a", "b"], "strip_whitespace": False, "include_attributes": True,
        "indent": 2, "namespaces": "strip", "record_path": None,
    }) == {"force_list": "a,b", "strip_whitespace": "false", "include_attributes": "true",
           "indent": "2", "namespaces": "strip"}
    assert client_options.to_params(None) == {}


@pytest.mark.parametrize("name", ["format", "filename", "tag", "metadata", "wait",
                                  "webhook_url"])
def test_request_parameters_are_not_options(name):
    with pytest.raises(ValueError, match=name):
        client_options.to_params({name: "x"})


# ------------------------------------------------------------------------------ Retry-After


def test_retry_after_seconds():
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 12 ") == 12.0
    assert parse_retry_after("0") == 0.0


def test_retry_after_http_date():
    now = 1_800_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now) == 30.0
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-1", "1.5", "Wed, 99 Foo 2026"])
def test_retry_after_unreadable(value):
    assert parse_retry_after(value) is None


def test_retry_delay_prefers_the_server_then_backs_off():
    assert retry_delay(3, 7.0) == 7.0
    assert [retry_delay(n, None) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_poll_backoff_grows_to_its_ceiling_and_a_hint_lowers_it():
    backoff = Backoff(first=0.2, factor=2, ceiling=1.0)
    assert [backoff.pause() for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    backoff.hint(0.5)
    assert backoff.pause() == 0.5
    backoff.hint(30)  # a hint never makes polls rarer
    assert backoff.pause() == 0.5


# ------------------------------------------------------------------------------ errors


def test_api_error_from_the_contracts_body():
    error = error_from_body(400, {"error": {"code": "INVALID_OPTION", "message": "bad indent",
                                            "details": {"option": "indent"}}}, "BAD REQUEST")
    assert (error.status, error.code, error.message, error.details) == (
        400, "INVALID_OPTION", "bad indent", {"option": "indent"})
    assert error.envelope() == {"error": {"code": "INVALID_OPTION", "message": "bad indent",
                                          "details": {"option": "indent"}, "status": 400}}


def test_api_error_from_a_body_that_is_not_the_contracts():
    error = error_from_body(502, None, "Bad Gateway", retry_after=3.0)
    assert (error.status, error.code, error.retry_after) == (502, "HTTP_ERROR", 3.0)
    assert "502 Bad Gateway" in error.message
    assert error_from_body(500, {"error": "oops"}).code == "HTTP_ERROR"
    assert error_from_body(404, {"error": {"code": "JOB_NOT_FOUND", "message": "no",
                                           "details": None}}).details == {}


def test_a_failed_job_is_an_api_error_with_the_jobs_code():
    job = {"id": "j1", "status": "failed", "error": {
        "code": "XML_PARSE_ERROR", "message": "mismatch", "details": {"line": 3, "column": 7}}}
    error = JobFailed(job)
    assert isinstance(error, ApiError)
    assert (error.status, error.code, error.message) == (None, "XML_PARSE_ERROR", "mismatch")
    assert error.details == {"line": 3, "column": 7}
    assert error.envelope() == {"error": {"code": "XML_PARSE_ERROR", "message": "mismatch",
                                          "details": {"line": 3, "column": 7, "job_id": "j1"}}}
    flat = JobFailed({"id": "j1", "status": "failed", "error": {  # as older servers recorded
        "code": "XML_PARSE_ERROR", "message": "mismatch", "line": 3, "column": 7}})
    assert (flat.code, flat.details) == ("XML_PARSE_ERROR", {"line": 3, "column": 7})
    cancelled = JobFailed({"id": "j2", "status": "cancelled", "error": None})
    assert cancelled.code == "JOB_CANCELLED"


# ------------------------------------------------------------------------------ upload body


def test_a_path_is_read_in_chunks_and_again_for_each_attempt(tmp_path):
    data = b"<r>" + b"x" * (2 * CHUNK_BYTES + 5) + b"</r>"
    path = tmp_path / "doc.xml"
    path.write_bytes(data)
    seen = []
    upload = Upload(path, progress=lambda done, total: seen.append((done, total)))
    assert (upload.filename, upload.size, upload.rereadable) == ("doc.xml", len(data), True)
    first = upload.body()
    assert len(first) == len(data)  # Content-Length is known
    chunks = list(first)
    assert [len(c) for c in chunks] == [CHUNK_BYTES, CHUNK_BYTES, len(data) - 2 * CHUNK_BYTES]
    assert b"".join(chunks) == data
    assert seen[-1] == (len(data), len(data))
    assert b"".join(upload.body()) == data
    upload.close()


def test_gzip_compresses_on_the_way(tmp_path):
    data = b"<r>" + b"<a>text</a>" * 300_000 + b"</r>"
    path = tmp_path / "doc.xml"
    path.write_bytes(data)
    upload = Upload(path, gzip=True)
    body = upload.body()
    assert not hasattr(body, "__len__")  # unknown length: chunked
    packed = b"".join(body)
    upload.close()
    assert gzip.decompress(packed) == data
    assert len(packed) < len(data) // 10


def test_a_seekable_stream_is_rewound_to_where_it_stood():
    stream = io.BytesIO(b"HEADER<r>1</r>")
    stream.seek(6)
    upload = Upload(stream)
    assert (upload.size, upload.rereadable, upload.filename) == (8, True, None)
    assert b"".join(upload.body()) == b"<r>1</r>"
    assert b"".join(upload.body()) == b"<r>1</r>"


class OneWay(io.RawIOBase):
    """A pipe-like stream: readable once, not seekable."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)


def test_a_stream_that_cannot_seek_is_sent_once():
    upload = Upload(io.BufferedReader(OneWay(b"<r/>")))
    assert (upload.rereadable, upload.size) == (False, None)
    assert b"".join(upload.body()) == b"<r/>"
    with pytest.raises(ValueError):
        upload.body()


def test_a_missing_file_fails_before_any_request(tmp_path):
    with pytest.raises(FileNotFoundError):
        Upload(tmp_path / "nope.xml")


# ------------------------------------------------------------------------------ progress lines


def test_plain_progress_lines():
    out = io.StringIO()
    with Lines("upload", out, in_bytes=True) as report:
        for done in range(0, 4097, 512):
            report(done, 4096)
    assert out.getvalue().splitlines() == [
        "xmlconv: upload 25% (1.0 KiB of 4.0 KiB)",
        "xmlconv: upload 50% (2.0 KiB of 4.0 KiB)",
        "xmlconv: upload 75% (3.0 KiB of 4.0 KiB)",
        "xmlconv: upload done (4.0 KiB)",
    ]
    out = io.StringIO()
    with Lines("convert", out, in_bytes=False) as report:
        report(100.0, 100.0)
    assert out.getvalue().splitlines() == ["xmlconv: convert done"]


# ------------------------------------------------------------------------------ over HTTP


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-able, or bytes
    headers: dict[str, str] = field(default_factory=dict)
    cut_short: bool = False  # announce more bytes than are sent, then close


class Scripted(ThreadingHTTPServer):
    """Answers each request with the next scripted Reply (the last one repeats)."""

    daemon_threads = True

    def __init__(self, replies: list[Reply]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.replies = replies
        self.seen: list[Seen] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Scripted

    def log_message(self, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if not size:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self) -> None:
        split = urlsplit(self.path)
        body = self._body()
        self.server.seen.append(Seen(self.command, split.path,
                                     {k: v[-1] for k, v in parse_qs(split.query,
                                                                    keep_blank_values=True
                                                                    ).items()},
                                     dict(self.headers), body))
        replies = self.server.replies
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        payload = reply.body if isinstance(reply.body, bytes) else (
            b"" if reply.body is None else json.dumps(reply.body).encode())
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status != 204:
            self.send_header("Content-Length", str(len(payload) + (100 if reply.cut_short
                                                                   else 0)))
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True

    do_GET = do_POST = do_DELETE = do_PUT = _answer


@pytest.fixture
def serve() -> Iterator:
    servers: list[Scripted] = []

    def start(*replies: Reply) -> Scripted:
        server = Scripted(list(replies))
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def job(status: str = "queued", **extra: Any) -> dict:
    return {"id": "0b0e1f6e-9a55-4c1e-9d7f-3f1b3f6d2a10", "status": status, "format": "csv",
            "progress": {"percent": 100.0 if status == "succeeded" else 0.0}, **extra}


def unavailable(after: str = "0") -> Reply:
    return Reply(503, {"error": {"code": "QUEUE_UNAVAILABLE", "message": "retry later",
                                 "details": {}}}, {"Retry-After": after})


def rate_limited(after: str = "0") -> Reply:
    return Reply(429, {"error": {"code": "RATE_LIMITED", "message": "slow down",
                                 "details": {"requests_per_minute": 1}}},
                 {"Retry-After": after})


@pytest.fixture
def doc(tmp_path) -> Path:
    path = tmp_path / "orders.xml"
    path.write_bytes(b"<orders>" + b"<order id='1'><v>x</v></order>" * 50_000 + b"</orders>")
    return path


def test_submit_streams_a_raw_body_with_its_parameters(serve, doc):
    server = serve(Reply(202, job(), {"Retry-After": "5"}))
    created = Client(server.url, api_key="k-1").submit(
        doc, "csv", {"namespaces": "strip", "force_list": ["v"]}, tag="nightly",
        metadata={"batch": 7}, webhook_url="https://example.com/h")
    assert created["id"] == job()["id"]
    (request,) = server.seen
    assert (request.method, request.path) == ("POST", "/jobs")
    assert request.query == {"format": "csv", "namespaces": "strip", "force_list": "v",
                             "filename": "orders.xml", "tag": "nightly",
                             "metadata": '{"batch":7}', "webhook_url": "https://example.com/h"}
    assert request.headers["Content-Type"] == "application/xml"
    assert request.headers["Content-Length"] == str(doc.stat().st_size)
    assert request.headers["Authorization"] == "Bearer k-1"
    assert request.headers["Idempotency-Key"]
    assert request.body == doc.read_bytes()


def test_gzip_on_the_wire(serve, doc):
    server = serve(Reply(202, job()))
    Client(server.url).submit(doc, gzip=True)
    (request,) = server.seen
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["Transfer-Encoding"] == "chunked"
    assert gzip.decompress(request.body) == doc.read_bytes()
    assert request.query["filename"] == "orders.xml"


def offer(server: Scripted, size: int, part_size: int) -> dict:
    """POST /uploads' answer, its part URLs on the scripted server (as a store would be)."""
    count = -(-size // part_size)
    return {"id": job()["id"], "size_bytes": size, "part_size": part_size, "parts": [
        {"part_number": n, "url": f"{server.url}/store/part{n}?X-Amz-Signature=s{n}",
         "size_bytes": min(part_size, size - (n - 1) * part_size)} for n in range(1, count + 1)],
        "expires_at": "2026-12-07T06:00:00Z", "links": {}}


def test_a_large_file_goes_straight_to_the_store_without_the_api_key(serve, doc):
    server = serve()
    size = doc.stat().st_size
    server.replies += [Reply(201, offer(server, size, 600_000)), Reply(200), Reply(200),
                       Reply(200), Reply(202, job())]
    progress: list[tuple] = []
    created = Client(server.url, api_key="k-1", direct_min_bytes=size).submit(
        doc, "csv", tag="big", progress=lambda *p: progress.append(p))
    assert created["id"] == job()["id"]
    opened, *puts, made = server.seen
    assert (opened.method, opened.path) == ("POST", "/uploads")
    assert json.loads(opened.body) == {"size_bytes": size, "filename": "orders.xml"}
    assert opened.headers["Authorization"] == "Bearer k-1"
    data = doc.read_bytes()
    assert [(p.method, p.path, p.query) for p in puts] == [
        ("PUT", f"/store/part{n}", {"X-Amz-Signature": f"s{n}"}) for n in (1, 2, 3)]
    assert b"".join(p.body for p in puts) == data
    assert [p.headers["Content-Length"] for p in puts] == [
        "600000", "600000", str(size - 1_200_000)]
    assert not any("Authorization" in p.headers for p in puts)  # the key stays with the API
    assert (made.method, made.path, made.body) == ("POST", "/jobs", b"")
    assert made.query == {"format": "csv", "tag": "big", "upload_id": job()["id"]}
    assert progress[-1] == (size, size)


def test_a_failing_part_is_sent_again_and_then_the_upload_given_up(serve, doc, monkeypatch):
    monkeypatch.setattr("client.direct.PART_BACKOFF", 0)
    server = serve()
    size = doc.stat().st_size
    failed = Reply(500, b"<Error>InternalError</Error>")
    server.replies += [Reply(201, offer(server, size, size)), failed, Reply(200),
                       Reply(202, job()), Reply(201, offer(server, size, size)), failed, failed,
                       failed, failed, Reply(204)]
    api = Client(server.url, direct_min_bytes=1)
    assert api.submit(doc)["id"] == job()["id"]  # the part's second attempt went through
    with pytest.raises(ApiError) as raised:
        api.submit(doc)
    assert (raised.value.status, raised.value.code) == (500, "HTTP_ERROR")
    assert [(s.method, s.path) for s in server.seen] == [
        ("POST", "/uploads"), ("PUT", "/store/part1"), ("PUT", "/store/part1"),
        ("POST", "/jobs"), ("POST", "/uploads"), *[("PUT", "/store/part1")] * 4,
        ("DELETE", f"/uploads/{job()['id']}")]  # given up: its quota slot comes back


def test_a_server_without_direct_uploads_gets_the_file_in_post_jobs(serve, doc):
    not_offered = Reply(501, {"error": {"code": "DIRECT_UPLOAD_UNAVAILABLE",
                                        "message": "local storage", "details": {}}})
    server = serve(not_offered, Reply(202, job()))
    api = Client(server.url, direct_min_bytes=1)
    api.submit(doc)
    api.submit(doc)
    assert [(s.method, s.path) for s in server.seen] == [
        ("POST", "/uploads"), ("POST", "/jobs"), ("POST", "/jobs")]  # asked once
    assert server.seen[-1].body == doc.read_bytes()


def test_a_503_is_retried_with_the_same_idempotency_key_and_the_whole_file(serve, doc):
    server = serve(unavailable(), rate_limited(), Reply(202, job()))
    progress: list[tuple] = []
    created = Client(server.url).submit(doc, "csv", progress=lambda *p: progress.append(p))
    assert created["status"] == "queued"
    assert len(server.seen) == 3
    keys = {request.headers["Idempotency-Key"] for request in server.seen}
    assert len(keys) == 1 and len(next(iter(keys))) >= 32  # generated once, sent each time
    assert all(request.body == doc.read_bytes() for request in server.seen)
    assert progress[-1] == (doc.stat().st_size, doc.stat().st_size)


def test_the_callers_idempotency_key_and_a_rewound_stream(serve):
    server = serve(unavailable(), Reply(202, job()))
    stream = io.BytesIO(b"junk<r>1</r>")
    stream.seek(4)
    Client(server.url).submit(stream, idempotency_key="batch-42")
    assert [r.headers["Idempotency-Key"] for r in server.seen] == ["batch-42", "batch-42"]
    assert [r.body for r in server.seen] == [b"<r>1</r>", b"<r>1</r>"]


def test_a_stream_that_cannot_be_reread_is_not_retried(serve):
    server = serve(unavailable(), Reply(202, job()))
    with pytest.raises(ApiError) as caught:
        Client(server.url).submit(io.BufferedReader(OneWay(b"<r>1</r>")))
    assert (caught.value.status, caught.value.code) == (503, "QUEUE_UNAVAILABLE")
    assert len(server.seen) == 1
    assert server.seen[0].body == b"<r>1</r>"  # sent chunked, whole


def test_retries_are_bounded(serve):
    server = serve(unavailable())
    with pytest.raises(ApiError) as caught:
        Client(server.url, retries=2).get("abc")
    assert caught.value.status == 503 and caught.value.retry_after == 0.0
    assert len(server.seen) == 3


def test_a_retry_after_beyond_the_limit_is_not_waited_for(serve):
    server = serve(rate_limited("3600"), Reply(200, job()))
    started = time.monotonic()
    with pytest.raises(ApiError) as caught:
        Client(server.url, max_retry_wait=60).get("abc")
    assert caught.value.code == "RATE_LIMITED" and caught.value.retry_after == 3600
    assert len(server.seen) == 1 and time.monotonic() - started < 5


def test_retry_after_is_waited_for(serve):
    server = serve(rate_limited("1"), Reply(200, job("running")))
    started = time.monotonic()
    assert Client(server.url).get("abc")["status"] == "running"
    assert time.monotonic() - started >= 1.0
    assert len(server.seen) == 2


def test_other_errors_are_raised_at_once(serve):
    server = serve(Reply(400, {"error": {"code": "INVALID_OPTION", "message": "indent",
                                         "details": {"option": "indent"}}}))
    with pytest.raises(ApiError) as caught:
        Client(server.url).submit(io.BytesIO(b"<r/>"), options={"indent": 99})
    assert (caught.value.status, caught.value.code, caught.value.details) == (
        400, "INVALID_OPTION", {"option": "indent"})
    assert len(server.seen) == 1


def test_wait_polls_until_the_job_finishes(serve):
    server = serve(Reply(200, job("queued")), Reply(200, job("running")),
                   rate_limited(), Reply(200, job("succeeded")))
    percents: list[float] = []
    done = Client(server.url).wait(job(), progress=lambda p, total: percents.append(p),
                                   stream=False)
    assert done["status"] == "succeeded"
    assert [r.path for r in server.seen] == [f"/jobs/{job()['id']}"] * 4
    assert percents == [0.0, 0.0, 100.0]


def test_wait_raises_the_jobs_error(serve):
    server = serve(Reply(200, job("failed", error={"code": "XML_PARSE_ERROR",
                                                    "message": "bad", "details": {"line": 1}})))
    with pytest.raises(JobFailed) as caught:
        Client(server.url).wait("abc", stream=False)
    assert (caught.value.code, caught.value.details) == ("XML_PARSE_ERROR", {"line": 1})


def test_wait_gives_up_after_its_timeout(serve):
    server = serve(Reply(200, job("running")))
    with pytest.raises(ApiError) as caught:
        Client(server.url).wait("abc", timeout=0.5, stream=False)
    assert caught.value.code == "WAIT_TIMEOUT"


# -- wait over the job's event stream (GET /jobs/<id>/events)


def sse(*events: tuple[int, dict], comment: bool = True) -> Reply:
    text = "retry: 2000\n\n" + (": keep-alive\n\n" if comment else "")
    for event_id, data in events:
        text += f"id: {event_id}\nevent: job\ndata: {json.dumps(data)}\n\n"
    return Reply(200, text.encode(), {"Content-Type": "text/event-stream"})


EVENTS = f"/jobs/{job()['id']}/events"


def test_wait_follows_the_jobs_event_stream(serve):
    running = job("running", progress={"percent": 40.0})
    server = serve(sse((1, job("queued")), (2, running), (3, job("succeeded"))))
    percents: list[float] = []
    done = Client(server.url).wait(job(), progress=lambda p, total: percents.append(p))
    assert done["status"] == "succeeded"
    assert [r.path for r in server.seen] == [EVENTS]
    assert server.seen[0].headers["Accept"] == "text/event-stream"
    assert percents == [0.0, 40.0, 100.0]


def test_wait_resumes_a_stream_that_ended_early_after_its_last_event(serve):
    server = serve(sse((1, job("queued")), (2, job("running"))),
                   sse((5, job("failed", error={"code": "XML_PARSE_ERROR", "message": "bad",
                                                 "details": {}}))))
    with pytest.raises(JobFailed) as caught:
        Client(server.url).wait(job())
    assert caught.value.code == "XML_PARSE_ERROR"
    assert [r.path for r in server.seen] == [EVENTS, EVENTS]
    assert "Last-Event-ID" not in server.seen[0].headers
    assert server.seen[1].headers["Last-Event-ID"] == "2"


@pytest.mark.parametrize("refusal", [
    Reply(503, {"error": {"code": "STREAMS_BUSY", "message": "full", "details": {}}},
          {"Retry-After": "5"}),
    Reply(429, {"error": {"code": "TOO_MANY_STREAMS", "message": "too many", "details": {}}},
          {"Retry-After": "5"}),
    Reply(404, {"error": {"code": "NOT_FOUND", "message": "no such route", "details": {}}}),
    Reply(200, b"<html>a proxy's page</html>", {"Content-Type": "text/html"}),
], ids=["busy", "per-key", "older-server", "proxy"])
def test_wait_polls_where_the_stream_is_refused(serve, refusal):
    server = serve(refusal, Reply(200, job("running")), Reply(200, job("succeeded")))
    assert Client(server.url).wait(job())["status"] == "succeeded"
    assert [r.path for r in server.seen] == [EVENTS, EVENTS[:-len("/events")],
                                             EVENTS[:-len("/events")]]


def test_wait_raises_what_the_stream_says_of_the_job(serve):
    server = serve(Reply(404, {"error": {"code": "JOB_NOT_FOUND", "message": "no such job",
                                         "details": {}}}))
    with pytest.raises(ApiError) as caught:
        Client(server.url).wait(job())
    assert (caught.value.status, caught.value.code) == (404, "JOB_NOT_FOUND")
    assert len(server.seen) == 1


def test_jobs_follows_next_links(serve):
    first = {"jobs": [job(id="a"), job(id="b")], "next": "/jobs?limit=2&tag=t&cursor=c1"}
    second = {"jobs": [job(id="c")], "next": None}
    server = serve(Reply(200, first), Reply(200, second))
    api = Client(server.url)
    assert [j["id"] for j in api.jobs(tag="t", page_size=2)] == ["a", "b", "c"]
    assert [(r.path, r.query) for r in server.seen] == [
        ("/jobs", {"limit": "2", "tag": "t"}),
        ("/jobs", {"limit": "2", "tag": "t", "cursor": "c1"})]


def test_jobs_stops_at_its_limit(serve):
    server = serve(Reply(200, {"jobs": [job(id="a"), job(id="b")], "next": "/jobs?cursor=x"}))
    assert [j["id"] for j in Client(server.url).jobs(limit=2, status="failed")] == ["a", "b"]
    assert [r.query for r in server.seen] == [{"limit": "2", "status": "failed"}]


def test_download_to_a_path_and_to_a_stream(serve, tmp_path):
    server = serve(Reply(200, b"a,b\n1,2\n", {"Content-Type": "text/csv"}))
    api = Client(server.url)
    target = tmp_path / "out.csv"
    seen: list[tuple] = []
    assert api.download(job(), target, progress=lambda *p: seen.append(p)) == 8
    assert target.read_bytes() == b"a,b\n1,2\n"
    assert seen[-1] == (8, 8)
    stream = io.BytesIO()
    api.download(job(), stream)
    assert stream.getvalue() == b"a,b\n1,2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_broken_download_leaves_no_file(serve, tmp_path):
    server = serve(Reply(200, b"a,b\n1,2\n", cut_short=True))
    with pytest.raises(ServerUnreachable):
        Client(server.url).download("abc", tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


class FullDisk(io.BytesIO):
    """A stream that takes `room` bytes, then fails as a full disk does."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def write(self, data) -> int:
        if self.tell() + len(data) > self.room:
            raise OSError(28, "No space left on device")
        return super().write(data)


def test_a_write_that_fails_fails_the_download(serve):
    """The chunks are written while the next ones arrive: a write's error is still the
    download's, not lost behind the chunks that followed it."""
    result = bytes(range(256)) * (3 * CHUNK_BYTES // 256)
    server = serve(Reply(200, result))
    with pytest.raises(OSError, match="No space left"):
        Client(server.url).download("abc", FullDisk(CHUNK_BYTES))


def test_a_write_that_fails_as_the_connection_breaks_is_not_resumed(serve):
    """Resuming would start from bytes that were never written: the write's error is raised."""
    result = bytes(range(256)) * (3 * CHUNK_BYTES // 256)
    cut = 2 * CHUNK_BYTES + 10  # the second chunk's write fails while the third breaks off
    server = serve(Reply(200, result[:cut], RANGES, cut_short=True),
                   Reply(206, result[cut:], {**RANGES, "Content-Range":
                                             f"bytes {cut}-{len(result) - 1}/{len(result)}"}))
    with pytest.raises(OSError, match="No space left"):
        Client(server.url).download("abc", FullDisk(CHUNK_BYTES + 5))
    assert len(server.seen) == 1


RESULT = bytes(range(256)) * (3 * CHUNK_BYTES // 256 + 7)
CUT = 2 * CHUNK_BYTES  # where the first answer breaks off: after whole chunks, none lost
RANGES = {"Accept-Ranges": "bytes", "ETag": '"v1"'}


def test_a_broken_download_resumes_where_it_stopped(serve, tmp_path):
    server = serve(Reply(200, RESULT[:CUT], RANGES, cut_short=True),
                   Reply(206, RESULT[CUT:], {
                       **RANGES, "Content-Range": f"bytes {CUT}-{len(RESULT) - 1}/{len(RESULT)}"}))
    seen: list[tuple] = []
    target = tmp_path / "out.csv"
    assert Client(server.url).download("abc", target, progress=lambda *p: seen.append(p)) \
        == len(RESULT)
    assert target.read_bytes() == RESULT
    assert [(r.headers.get("Range"), r.headers.get("If-Range")) for r in server.seen] == [
        (None, None), (f"bytes={CUT}-", '"v1"')]
    assert seen[-1] == (len(RESULT), CUT + 100)  # the length the first answer announced


def test_a_resumption_answered_with_the_whole_result_starts_over(serve):
    server = serve(Reply(200, RESULT[:CUT], RANGES, cut_short=True), Reply(200, RESULT, RANGES))
    out = io.BytesIO(b"kept:")
    out.seek(5)
    Client(server.url).download("abc", out)
    assert out.getvalue() == b"kept:" + RESULT


def test_a_download_without_ranges_is_not_resumed(serve, tmp_path):
    server = serve(Reply(200, RESULT[:CUT], {"ETag": '"v1"'}, cut_short=True))
    with pytest.raises(ServerUnreachable):
        Client(server.url).download("abc", tmp_path / "out.csv")
    assert len(server.seen) == 1 and list(tmp_path.iterdir()) == []


def test_resumptions_are_bounded(serve, tmp_path):
    server = serve(Reply(200, RESULT[:CUT], RANGES, cut_short=True),
                   Reply(206, b"", {**RANGES, "Content-Range": f"bytes {CUT}-{CUT}/{CUT + 1}"},
                         cut_short=True))
    with pytest.raises(ServerUnreachable):
        Client(server.url, retries=2).download("abc", tmp_path / "out.csv")
    assert len(server.seen) == 3 and list(tmp_path.iterdir()) == []


def test_a_refused_download_is_an_api_error(serve, tmp_path):
    server = serve(Reply(409, {"error": {"code": "JOB_NOT_FINISHED", "message": "running",
                                         "details": {"status": "running"}}}))
    with pytest.raises(ApiError) as caught:
        Client(server.url).download("abc", tmp_path / "out.csv")
    assert (caught.value.status, caught.value.details) == (409, {"status": "running"})
    assert list(tmp_path.iterdir()) == []


def test_cancel(serve):
    server = serve(Reply(202, job("cancelled")), Reply(204))
    api = Client(server.url)
    assert api.cancel(job())["status"] == "cancelled"
    assert api.cancel("a/b") is None
    assert [(r.method, r.path) for r in server.seen] == [
        ("DELETE", f"/jobs/{job()['id']}"), ("DELETE", "/jobs/a%2Fb")]


def test_an_unreachable_server():
    from testkit.waiting import free_port

    with pytest.raises(ServerUnreachable) as caught:
        Client(f"http://127.0.0.1:{free_port()}", timeout=5).get("abc")
    assert caught.value.status is None and caught.value.code == "SERVER_UNREACHABLE"
    assert isinstance(caught.value, ApiError)


def test_the_client_loads_no_service_module_nor_the_engine():
    probe = ("import client, client.cli, client.progress, sys\n"
             "print(' '.join(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=True)
    loaded = set(done.stdout.split())
    assert "requests" in loaded
    banned = ("flask", "celery", "redis", "lxml", "api", "worker", "common")
    assert not {m for m in loaded if m.split(".")[0] in banned}
    # Of the converter, only what has no dependency: its exit statuses, error codes, limits,
    # and how a result file is written.
    assert {m for m in loaded if m.split(".")[0] == "converter"} == {
        "converter", "converter.errors", "converter.exit_status", "converter.formats",
        "converter.limits", "converter.options", "converter.result_file"}


def test_a_local_conversion_loads_nothing_of_the_http_client(tmp_path):
    """`xmlconv convert` starts as fast as the converter's own CLI: its start is in every
    conversion's time."""
    (tmp_path / "in.xml").write_bytes(b"<a><b>1</b></a>")
    probe = ("import sys\nfrom client.main import main\n"
             "status = main(['convert', 'in.xml', '--to', 'json', '-o', 'out.json'])\n"
             "print(status, ' '.join(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    status, *loaded = done.stdout.split()
    assert status == "0" and json.loads((tmp_path / "out.json").read_bytes()) == {"a": {"b": "1"}}
    assert not {m for m in loaded if m.split(".")[0] in ("requests", "urllib3", "tqdm")}
    assert "client.api" not in loaded


@pytest.mark.parametrize(("argv", "force_list"), [
    (["--force-list", "item", "orders.xml"], ["item"]),
    (["--force-list", "item", "tag", "orders.xml"], ["item", "tag"]),
    (["orders.xml", "--force-list", "item", "tag"], ["item", "tag"]),
    (["--force-list", "item,tag", "--force-list", "x", "orders.xml"], ["item", "tag", "x"]),
])
def test_force_list_gives_the_file_back(argv, force_list):
    """The same forms as `xmlconv convert --force-list` (optionspec/flags.py)."""
    args = client_cli._parser().parse_args(["submit", *argv])
    assert args.force_list == force_list and args.file == "orders.xml"


def test_submit_without_a_file_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        client_cli._parser().parse_args(["submit", "--force-list", "item"])
    assert exited.value.code == 2
    assert "the following arguments are required: FILE" in capsys.readouterr().err


# ------------------------------------------------------------------------------ the commands
# The installed `xmlconv`, run as a user runs it, against the scripted server.

XMLCONV = Path(sys.executable).with_name("xmlconv")


def xmlconv(*args: str, url: str = "http://127.0.0.1:1") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMLCONV_")}
    return subprocess.run([str(XMLCONV), *args], env={**env, "XMLCONV_URL": url},
                          capture_output=True, text=True, timeout=60)


def last_error(stderr: str) -> dict:
    """The error line, the last one on stderr, in the API's shape."""
    payload = json.loads(stderr.splitlines()[-1])
    assert list(payload) == ["error"] and list(payload["error"])[:3] == [
        "code", "message", "details"]
    return payload["error"]


FAILED = job("failed", error={"code": "XML_PARSE_ERROR", "message": "mismatch",
                              "details": {"line": 3, "column": 7}})
CANCELLED = job("cancelled", error=None)


@pytest.mark.parametrize(("command", "finished", "status", "code"), [
    ("wait", job("succeeded"), ExitStatus.SUCCESS, None),
    ("wait", FAILED, ExitStatus.ERROR, "XML_PARSE_ERROR"),
    ("wait", CANCELLED, ExitStatus.CANCELLED, "JOB_CANCELLED"),
    ("status", FAILED, ExitStatus.SUCCESS, None),
    ("status", CANCELLED, ExitStatus.SUCCESS, None),
], ids=["wait-succeeded", "wait-failed", "wait-cancelled", "status-failed", "status-cancelled"])
def test_the_jobs_line_says_what_is_so(serve, command, finished, status, code):
    server = serve(Reply(200, finished))
    done = xmlconv(command, finished["id"], url=server.url)
    assert done.returncode == status, done.stderr
    row = done.stdout.rstrip("\n").split("\t")
    percent = "100.0%" if finished["status"] == "succeeded" else "-"  # not 0.0% once stopped
    assert row[:4] == [finished["id"], finished["status"], percent, "csv"]
    if code is None:
        assert "{" not in done.stderr
        return
    error = last_error(done.stderr)
    position = (finished["error"] or {}).get("details", {})
    assert (error["code"], error["details"]) == (code, {**position, "job_id": finished["id"]})
    assert f"xmlconv: convert {finished['status']}" in done.stderr.splitlines()
    done = xmlconv(command, finished["id"], "--json", "-q", url=server.url)
    assert done.returncode == status
    assert json.loads(done.stdout)["status"] == finished["status"]  # the job, as JSON


@pytest.mark.parametrize(("reply", "status"), [
    (Reply(401, {"error": {"code": "UNAUTHENTICATED", "message": "no key", "details": {}}}),
     ExitStatus.API_ERROR),
    (Reply(404, {"error": {"code": "JOB_NOT_FOUND", "message": "no job", "details": {}}}),
     ExitStatus.API_ERROR),
    (unavailable("3600"), ExitStatus.SERVER_UNAVAILABLE),  # longer than the client waits
    (Reply(502, b"<html>bad gateway</html>"), ExitStatus.SERVER_UNAVAILABLE),
    (Reply(400, {"error": {"code": "INVALID_OPTION", "message": "indent", "details": {}}}),
     ExitStatus.USAGE),  # as `xmlconv convert --indent 99`
    (Reply(400, {"error": {"code": "EMPTY_INPUT", "message": "empty", "details": {}}}),
     ExitStatus.ERROR),  # as `xmlconv convert` of an empty file
], ids=["401", "404", "503", "502", "invalid-option", "empty-input"])
def test_each_refusal_has_its_exit_status(serve, reply, status):
    server = serve(reply)
    done = xmlconv("status", "abc", url=server.url)
    assert done.returncode == status
    assert done.stdout == ""
    assert last_error(done.stderr)["status"] == reply.status


def test_an_unreachable_server_exits_server_unavailable():
    done = xmlconv("jobs")
    assert done.returncode == ExitStatus.SERVER_UNAVAILABLE == 4
    error = last_error(done.stderr)
    assert error["code"] == "SERVER_UNREACHABLE" and "status" not in error


def test_a_missing_input_is_the_same_failure_for_convert_and_submit(tmp_path):
    missing = str(tmp_path / "nope.xml")
    converted = xmlconv("convert", missing, "--to", "json")
    submitted = xmlconv("submit", missing, "--to", "json")  # refused before any request
    assert converted.returncode == submitted.returncode == ExitStatus.FILE_ERROR == 6
    assert converted.stderr == submitted.stderr == json.dumps({"error": {
        "code": "INPUT_NOT_FOUND", "message": f"no such file: {missing}", "details": {}}},
        separators=(",", ":")) + "\n"
    assert converted.stdout == submitted.stdout == ""


def test_usage_errors_exit_2_and_name_every_command():
    done = xmlconv("bogus")
    assert done.returncode == ExitStatus.USAGE == 2
    assert "choose from 'convert', 'submit', 'status', 'wait'" in done.stderr
    done = xmlconv("submit", "x.xml", "--metadata", "[1]")
    assert done.returncode == ExitStatus.USAGE
    assert last_error(done.stderr)["code"] == "INVALID_REQUEST"


def test_every_exit_status_is_documented():
    table = (REPO / "docs" / "client.md").read_text(encoding="utf-8")
    for status in ExitStatus:
        assert f"| {status.value} | `{status.name}` |" in table, status
