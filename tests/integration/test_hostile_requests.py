"""Requests as a hostile (or broken) client sends them, against the real API under gunicorn: every
answer is in the contract (docs/api.md, "Refusals") — a documented status with the JSON error
envelope — and a refused upload leaves no job directory behind.

Where requests or werkzeug would not send the malformed bytes (bad chunk framing, a body shorter
than its Content-Length, bad request lines and headers), they go over a raw socket.
"""

from __future__ import annotations

import gzip
import json
import socket
from urllib.parse import quote, urlsplit

import pytest
import requests
from werkzeug.http import parse_options_header

from testkit.jobs_api import accepted_job, error_of
from testkit.throttle import stopped_pool
from testkit.waiting import wait_for

DOC = b"<orders><order id='1'><item>tea</item></order><order id='2'/></orders>\n"
MALFORMED = b"<root>\n  <a>one</a>\n  <b>two</a>\n</root>\n"
BOUNDARY = "hostile-7c1d2e-boundary"
XML = {"Content-Type": "application/xml"}


# -- raw HTTP


def exchange(stack, data: bytes, *, half_close: bool = True, timeout: float = 15
             ) -> tuple[int, dict[str, str], bytes]:
    """Send `data` on a new connection (then, by default, shut our side down, as a client that
    has nothing more to send) and read until the server closes it: (status, headers, body) of
    its one answer. Each answer here closes the connection, and nothing may follow it (a
    second answer would mean the server read the rest of a broken body as a new request)."""
    parts = urlsplit(stack.api_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while True:
            try:
                piece = sock.recv(65536)
            except ConnectionResetError:
                break
            if not piece:
                break
            received += piece
    head, sep, body = received.partition(b"\r\n\r\n")
    assert sep, f"no answer: {received!r}"
    status = int(head.split(b" ", 2)[1])
    headers = _headers(head)
    length = int(headers["content-length"])
    assert body[length:] == b"", f"more after the answer: {body[length:]!r}"
    assert headers["connection"].lower() == "close"
    return status, headers, body[:length]


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines)}


def post_head(path: str = "/jobs", content_type: str = "application/xml", **headers: str
              ) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}",
             *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def envelope(status: int, headers: dict[str, str], body: bytes, expected_status: int,
             code: str) -> dict:
    """The JSON error envelope of a raw answer (as testkit.jobs_api.error_of for requests)."""
    assert status == expected_status, body
    assert headers["content-type"] == "application/json", (headers, body)
    error = json.loads(body)
    assert set(error) == {"error"} and set(error["error"]) == {"code", "message", "details"}
    assert error["error"]["code"] == code, error
    assert b"<html" not in body and b"Traceback" not in body
    return error["error"]


def multipart(*parts: tuple[bytes, bytes]) -> bytes:
    """A multipart/form-data body from (part header lines, data) pairs."""
    delimiter = b"--" + BOUNDARY.encode()
    return b"".join(delimiter + b"\r\n" + head + b"\r\n\r\n" + data + b"\r\n"
                    for head, data in parts) + delimiter + b"--\r\n"


def file_part(data: bytes, disposition: bytes = b'form-data; name="file"; filename="o.xml"'
              ) -> tuple[bytes, bytes]:
    return b"Content-Disposition: " + disposition + b"\r\nContent-Type: application/xml", data


def field(name: str, value: str) -> tuple[bytes, bytes]:
    return f'Content-Disposition: form-data; name="{name}"'.encode(), value.encode()


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def post_multipart(stack, body: bytes, path: str = "/jobs", **kwargs) -> requests.Response:
    return requests.post(stack.url(path), data=body, headers={"Content-Type": MULTIPART},
                         timeout=60, **kwargs)


def disposition(response: requests.Response) -> tuple[str, dict[str, str]]:
    """Content-Disposition, checked to be a valid header value (visible ASCII, no controls)."""
    value = response.headers["Content-Disposition"]
    assert value.isascii() and value.isprintable(), value
    return parse_options_header(value)


# -- 1. file names


CONTROL_NAMES = ["a\r\nb.xml", "a\x00b.xml", "a\x7fb.xml"]


@pytest.mark.parametrize("name", CONTROL_NAMES, ids=["CRLF", "NUL", "DEL"])
def test_control_characters_in_a_raw_uploads_filename_are_dropped(stack, name):
    job = accepted_job(requests.post(stack.url("/jobs"), data=DOC, headers=XML,
                                     params={"filename": name}, timeout=30))
    assert job["input"]["filename"] == "ab.xml"
    assert stack.wait_finished(job["id"])["status"] == "succeeded"
    for _ in range(2):  # every time, not only the first
        result = requests.get(stack.url(f"/jobs/{job['id']}/result"), timeout=30)
        assert result.status_code == 200, result.text
        assert disposition(result) == ("attachment", {"filename": "ab.json"})
        assert result.json()["orders"]["order"][0]["@id"] == "1"


@pytest.mark.parametrize("name", CONTROL_NAMES, ids=["CRLF", "NUL", "DEL"])
def test_control_characters_in_a_filename_on_the_legacy_route(stack, name):
    response = requests.post(stack.url("/convert/xml-to-json"), data=DOC, headers=XML,
                             params={"filename": name}, timeout=60)
    assert response.status_code == 200, response.text
    assert disposition(response) == ("inline", {"filename": "ab.json"})
    assert response.json()["orders"]["order"][1] == {"@id": "2"}


@pytest.mark.parametrize("disposition_value", [
    b"form-data; name=\"file\"; filename*=UTF-8''a%0D%0Ab.xml",
    b'form-data; name="file"; filename="a\x00b.xml"',
    b'form-data; name="file"; filename="a\x7fb.xml"',
    b"form-data; name=\"file\"; filename*=UTF-8''a%00b%E2%80%AE.xml",
], ids=["CRLF", "NUL", "DEL", "NUL and RLO"])
def test_control_characters_in_a_parts_filename_are_dropped(stack, disposition_value):
    response = post_multipart(stack, multipart(file_part(DOC, disposition_value)))
    job = accepted_job(response)
    assert job["input"]["filename"] == "ab.xml"
    assert stack.wait_finished(job["id"])["status"] == "succeeded"
    result = requests.get(stack.url(f"/jobs/{job['id']}/result"), timeout=30)
    assert result.status_code == 200, result.text
    assert disposition(result) == ("attachment", {"filename": "ab.json"})


@pytest.mark.parametrize(("sent", "stored", "ascii_name", "full_name"), [
    ("заказы.xml", "заказы.xml", "result.json", "заказы.json"),
    ("déjà vu.xml", "déjà vu.xml", "deja vu.json", "déjà vu.json"),
    ('a"b.xml', 'a"b.xml', "a_b.json", 'a"b.json'),
    ("a;b%41\\c.xml", "c.xml", "c.json", None),
    ("semi;colon%20.xml", "semi;colon%20.xml", "semi_colon_20.json", "semi;colon%20.json"),
    ("..\\..\\x.xml", "x.xml", "x.json", None),
    ("../../etc/passwd", "passwd", "passwd.json", None),
    ("..", "upload.xml", "upload.json", None),
    ("", "upload.xml", "upload.json", None),
    ("\x00\r\n", "upload.xml", "upload.json", None),
    ("订单 2026.xml.gz", "订单 2026.xml", "2026.json", "订单 2026.json"),
], ids=["cyrillic", "accents", "quote", "semicolon path", "semicolon", "windows path",
        "unix path", "dots", "empty", "controls only", "cjk gz"])
def test_any_filename_gives_a_valid_content_disposition(stack, sent, stored, ascii_name,
                                                        full_name):
    """RFC 6266: an ASCII `filename` always, and `filename*` (UTF-8) for the real name when it
    differs; werkzeug's parser (as a browser's) reads the real name back."""
    data = gzip.compress(DOC) if sent.endswith(".gz") else DOC
    job = accepted_job(requests.post(stack.url("/jobs"), data=data, headers=XML,
                                     params={"filename": sent}, timeout=30))
    assert job["input"]["filename"] == stored
    assert stack.wait_finished(job["id"])["status"] == "succeeded"
    result = requests.get(stack.url(f"/jobs/{job['id']}/result"), timeout=30)
    assert result.status_code == 200, result.text
    raw = result.headers["Content-Disposition"]
    assert raw.startswith(f'attachment; filename="{ascii_name}"'), raw
    if full_name is None:
        assert "filename*" not in raw
        assert disposition(result) == ("attachment", {"filename": ascii_name})
    else:
        assert f"filename*=UTF-8''{quote(full_name, safe='!#$&+-.^_`|~')}" in raw
        # werkzeug prefers filename* and decodes it, as RFC 6266 clients do
        assert disposition(result) == ("attachment", {"filename": full_name})


def test_a_multipart_filename_in_utf8_is_kept(stack):
    body = multipart(file_part(DOC, b"form-data; name=\"file\"; filename*=UTF-8''"
                               + quote("заказы.xml").encode()))
    job = accepted_job(post_multipart(stack, body))
    assert job["input"]["filename"] == "заказы.xml"
    assert stack.wait_finished(job["id"])["status"] == "succeeded"
    result = requests.get(stack.url(f"/jobs/{job['id']}/result"), timeout=30)
    assert disposition(result) == ("attachment", {"filename": "заказы.json"})


# -- 2. malformed chunked transfer encoding


@pytest.mark.parametrize("path", ["/jobs", "/convert/xml-to-json"])
@pytest.mark.parametrize(("body", "half_close"), [
    (b"zz\r\n<a/>\r\n0\r\n\r\n", False),
    (b"4\r\n<a/>XX0\r\n\r\n", False),
    (b"4;=bad\r\n<a/>\r\n0\r\n\r\n", False),
    (b"4\r\n<a/>\r\n", True),
    (b"40\r\n<orders>", True),
], ids=["bad size", "no CRLF after the data", "bad extension", "no last chunk",
        "cut inside a chunk"])
def test_malformed_chunked_body_is_a_400_and_nothing_is_kept(stack, path, body, half_close):
    before = stack.job_dirs()
    status, headers, answer = exchange(
        stack, post_head(path, Transfer_Encoding="chunked") + body, half_close=half_close)
    error = envelope(status, headers, answer, 400, "INVALID_REQUEST")
    assert "chunk" in error["message"]
    assert headers.get("connection", "").lower() == "close"
    assert stack.job_dirs() == before


# -- 3. bodies shorter than said, and empty ones


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/xml", DOC),
    (MULTIPART, multipart(field("format", "csv"), file_part(DOC))),
], ids=["raw", "multipart"])
@pytest.mark.parametrize("path", ["/jobs", "/convert/xml-to-json"])
def test_a_body_shorter_than_its_content_length_is_a_400(stack, content_type, body, path):
    before = stack.job_dirs()
    sent = body[:len(body) // 2]
    status, headers, answer = exchange(
        stack, post_head(path, content_type, Content_Length=str(len(body))) + sent)
    error = envelope(status, headers, answer, 400, "INVALID_REQUEST")
    assert error["message"] == "the body ended before Content-Length bytes"
    assert error["details"] == {"content_length": len(body), "received_bytes": len(sent)}
    assert stack.job_dirs() == before


def test_a_gzip_body_shorter_than_its_content_length_is_a_400(stack):
    before = stack.job_dirs()
    body = gzip.compress(DOC * 100)
    status, headers, answer = exchange(stack, post_head(
        Content_Length=str(len(body)), Content_Encoding="gzip") + body[:-20])
    envelope(status, headers, answer, 400, "INVALID_REQUEST")
    assert stack.job_dirs() == before


@pytest.mark.parametrize("send", [
    lambda stack, path: requests.post(stack.url(path), data=b"", headers=XML, timeout=30),
    lambda stack, path: requests.post(stack.url(path), data=iter([]), headers=XML, timeout=30),
    lambda stack, path: post_multipart(stack, multipart(field("format", "csv"), file_part(b"")),
                                       path),
    lambda stack, path: requests.post(stack.url(path), files={"file": ("o.xml", b"")},
                                      timeout=30),
    lambda stack, path: requests.post(stack.url(path), data=gzip.compress(b""), timeout=30,
                                      headers={**XML, "Content-Encoding": "gzip"}),
], ids=["raw Content-Length 0", "raw chunked, no chunk", "multipart, empty part",
        "multipart by requests", "gzip of nothing"])
@pytest.mark.parametrize("path", ["/jobs", "/convert/xml-to-csv"])
def test_an_empty_upload_is_a_400_at_once(stack, send, path):
    before = stack.job_dirs()
    error = error_of(send(stack, path), 400, "EMPTY_INPUT")
    assert error["message"] == "the upload is empty: send the XML document"
    assert stack.job_dirs() == before


def test_a_whitespace_only_upload_still_fails_its_job(stack):
    """Not empty: converted, and failed by the converter as before."""
    job = accepted_job(requests.post(stack.url("/jobs"), data=b" \n ", headers=XML, timeout=30))
    failed = stack.wait_finished(job["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "EMPTY_INPUT"


# -- 4. what gunicorn refuses itself


def long_header(size: int) -> bytes:
    return b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"


@pytest.mark.parametrize(("request_bytes", "status", "code"), [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "INVALID_REQUEST"),
    (long_header(20000), 431, "INVALID_REQUEST"),
    (b"GET /health HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n",
     431, "INVALID_REQUEST"),
    (b"GARBAGE\r\n\r\n", 400, "INVALID_REQUEST"),
    (b"G@T /health HTTP/1.1\r\nHost: x\r\n\r\n", 400, "INVALID_REQUEST"),
    (b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", 400, "INVALID_REQUEST"),
    (b"GET /health HTTP/1.1\r\nBad Header: v\r\n\r\n", 400, "INVALID_REQUEST"),
    (b"GET /health HTTP/1.1\r\nX-Nul: a\x00b\r\n\r\n", 400, "INVALID_REQUEST"),
    (b"GET /health HTTP/1.1\r\nX-A: a\r\n folded\r\n\r\n", 400, "INVALID_REQUEST"),
    (b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n<a/>",
     400, "INVALID_REQUEST"),
    (b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\n"
     b"Transfer-Encoding: br, chunked\r\n\r\n0\r\n\r\n", 501, "HTTP_ERROR"),
    (b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "INVALID_REQUEST"),
], ids=["URI too long", "header too large", "too many headers", "bad request line",
        "bad method", "bad version", "space in a header name", "NUL in a header value",
        "folded header", "two Content-Lengths", "unsupported transfer coding",
        "Content-Length and chunked"])
def test_what_gunicorn_refuses_is_answered_in_json(stack, request_bytes, status, code):
    before = stack.job_dirs()
    answer = exchange(stack, request_bytes, half_close=False)
    error = envelope(*answer, status, code)
    assert error["message"] and error["details"] == {}
    assert answer[1]["connection"].lower() == "close"
    assert stack.job_dirs() == before
    assert requests.get(stack.url("/health"), timeout=10).ok  # and the worker carries on


@pytest.mark.parametrize("coding", ["gzip", "deflate", "compress"])
def test_a_compressing_transfer_coding_is_refused(stack, coding):
    """gunicorn passes these on undecoded: they would be stored as the XML."""
    before = stack.job_dirs()
    body = gzip.compress(DOC)
    answer = exchange(stack, post_head(Transfer_Encoding=f"{coding}, chunked")
                      + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    error = envelope(*answer, 501, "HTTP_ERROR")
    assert error["details"] == {"transfer_encoding": f"{coding}, chunked"}
    assert stack.job_dirs() == before


# -- 5. one error shape


def test_a_failed_jobs_error_has_the_envelopes_shape(stack):
    job = accepted_job(requests.post(stack.url("/jobs"), data=MALFORMED, headers=XML,
                                     timeout=30))
    failed = stack.wait_finished(job["id"])
    error = failed["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == "XML_PARSE_ERROR"
    assert error["details"]["line"] == 3 and isinstance(error["details"]["column"], int)

    result = error_of(requests.get(stack.url(f"/jobs/{job['id']}/result"), timeout=10),
                      409, "RESULT_UNAVAILABLE")
    assert result["details"]["error"] == error
    assert "Retry-After" not in requests.get(stack.url(f"/jobs/{job['id']}/result"),
                                             timeout=10).headers  # it will never be ready

    legacy = error_of(requests.post(stack.url("/convert/xml-to-json"), data=MALFORMED,
                                    headers=XML, timeout=60), 422, "XML_PARSE_ERROR")
    assert legacy["details"]["line"] == 3 and legacy["details"]["job_id"]
    assert set(legacy["details"]) == {"line", "column", "job_id"}


# -- 6. small headers, and `wait` as a form field


def test_a_204_carries_no_content_type(stack):
    job = accepted_job(requests.post(stack.url("/jobs"), data=DOC, headers=XML, timeout=30))
    stack.wait_finished(job["id"])
    deleted = requests.delete(stack.url(f"/jobs/{job['id']}"), timeout=10)
    assert deleted.status_code == 204 and deleted.content == b""
    assert "Content-Type" not in deleted.headers, deleted.headers


def test_the_result_of_an_unfinished_job_is_409_with_retry_after(stack):
    with stopped_pool(stack.worker):
        job = accepted_job(requests.post(stack.url("/jobs"), data=DOC, headers=XML, timeout=60))
        response = requests.get(stack.url(f"/jobs/{job['id']}/result"), timeout=10)
        requests.delete(stack.url(f"/jobs/{job['id']}"), timeout=10)
    error = error_of(response, 409, "JOB_NOT_FINISHED")
    assert error["details"]["status"] == "queued"
    assert int(response.headers["Retry-After"]) > 0


def test_wait_as_a_form_field_is_honoured(stack):
    body = multipart(file_part(DOC), field("wait", "30"))  # after the file: known only then
    response = post_multipart(stack, body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded"
    assert "Retry-After" not in response.headers


def test_wait_as_a_form_field_on_the_legacy_route(stack):
    response = post_multipart(stack, multipart(field("wait", "0"), file_part(DOC)),
                              "/convert/xml-to-json")
    job = accepted_job(response)  # no waiting: the job, to be followed
    assert stack.wait_finished(job["id"])["status"] == "succeeded"


@pytest.mark.parametrize("wait", ["soon", "-1", "100000"])
def test_a_bad_wait_form_field_is_a_400_and_nothing_is_kept(stack, wait):
    before = stack.job_dirs()
    error = error_of(post_multipart(stack, multipart(file_part(DOC), field("wait", wait))),
                     400, "INVALID_REQUEST")
    assert error["details"] == {"parameter": "wait"}
    assert stack.job_dirs() == before


def test_the_connection_still_serves_after_a_refused_empty_upload(stack):
    """A refusal decided after reading the whole body keeps the connection usable."""
    with requests.Session() as session:
        error_of(session.post(stack.url("/jobs"), data=b"", headers=XML, timeout=30), 400,
                 "EMPTY_INPUT")
        job = accepted_job(session.post(stack.url("/jobs"), data=DOC, headers=XML, timeout=30))
    wait_for(lambda: stack.get_job(job["id"])["status"] == "succeeded", 60,
             "the following job did not succeed")
