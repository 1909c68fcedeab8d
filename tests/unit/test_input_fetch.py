"""worker/fetch.py: a job's input_url fetched against a real HTTP origin on loopback
(testkit/origin.py) — the body in every framing, and each way a fetch fails named, on time and
within the size limit; common/outbound_urls.py's rules for input_url."""

from __future__ import annotations

import time

import pytest

from common.errors import ServiceError
from common.outbound_urls import INPUT_URL, check_url, shown
from testkit.origin import Origin
from worker.fetch import MAX_REDIRECTS, FetchFailed, FetchLimits, open_url

DOC = b"<orders>" + b"<order id='1'><item>tea</item></order>" * 5000 + b"</orders>"
LOOPBACK = FetchLimits(max_bytes=1024 * 1024, seconds=5, min_bytes_per_second=0,
                       allow_private=True)


@pytest.fixture
def origin():
    with Origin() as server:
        yield server


def fetched(url: str, limits: FetchLimits = LOOPBACK) -> tuple[bytes, int | None]:
    with open_url(url, limits) as body:
        return b"".join(body.chunks()), body.total


def failure(url: str, limits: FetchLimits = LOOPBACK) -> FetchFailed:
    with pytest.raises(FetchFailed) as caught:
        fetched(url, limits)
    error = caught.value.to_error()
    assert error.code == "INPUT_FETCH_FAILED" and error.details["reason"] == caught.value.reason
    return caught.value


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_the_body_arrives_whole_in_every_framing(origin, framing):
    url = origin.route(f"/{framing}.xml", Origin.file(DOC, framing=framing))
    body, total = fetched(url)
    assert body == DOC
    assert total == (len(DOC) if framing == "length" else None)
    head = origin.heads(f"/{framing}.xml")[0].decode()
    assert f"Host: 127.0.0.1:{origin.port}" in head and "Accept-Encoding: identity" in head


def test_an_http_status_is_named_with_its_code(origin):
    for code in (404, 403, 500):
        failed = failure(origin.route(f"/status-{code}", Origin.status(code)))
        assert (failed.reason, failed.details) == ("HTTPStatus", {"status": code})


def test_redirects_are_followed_then_counted(origin):
    origin.route("/final.xml", Origin.file(DOC))
    url = origin.route("/moved", Origin.redirect("/final.xml", 301))
    assert fetched(url)[0] == DOC
    origin.route("/loop", Origin.redirect("/loop", 307))
    failed = failure(origin.base + "/loop")
    assert (failed.reason, failed.details) == ("TooManyRedirects",
                                               {"max_redirects": MAX_REDIRECTS})
    assert len(origin.heads("/loop")) == MAX_REDIRECTS + 1


@pytest.mark.parametrize("location", [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata: refused even with the switch
    "http://user:pass@127.0.0.1/x",  # credentials
    "file:///etc/passwd",
    "http://127.0.0.1\\@evil.example/",
])
def test_a_redirect_to_a_refused_address_fails_before_connecting(origin, location):
    url = origin.route("/bounce", Origin.redirect(location))
    failed = failure(url)
    assert failed.reason == "RedirectRefused" and failed.details == {"redirects": 1}


def test_without_the_switch_a_loopback_url_is_refused_unfetched(origin):
    url = origin.route("/private.xml", Origin.file(DOC))
    failed = failure(url, FetchLimits(allow_private=False, seconds=5))
    assert failed.reason == "Refused"
    assert origin.heads("/private.xml") == []


def test_too_large_is_refused_by_its_length_or_while_streaming(origin):
    small = FetchLimits(max_bytes=len(DOC) - 1, seconds=5, min_bytes_per_second=0,
                        allow_private=True)
    announced = origin.route("/announced.xml", Origin.file(DOC))
    failed = failure(announced, small)
    assert (failed.reason, failed.details) == ("TooLarge", {"max_bytes": len(DOC) - 1})
    # No length: the body is cut at the chunk that passes the limit, however long it would go.
    started = time.monotonic()
    failed = failure(origin.route("/endless.xml", Origin.endless()), small)
    assert failed.reason == "TooLarge" and time.monotonic() - started < 5


def test_a_silent_server_is_cut_off_at_the_deadline(origin):
    started = time.monotonic()
    failed = failure(origin.route("/silent", Origin.silent()),
                     FetchLimits(seconds=1.5, min_bytes_per_second=0, allow_private=True))
    assert failed.reason == "Timeout"
    assert 1.4 < time.monotonic() - started < 3


def test_a_trickle_is_cut_off_at_the_deadline_however_steady(origin):
    started = time.monotonic()
    url = origin.route("/trickle", Origin.trickle(DOC, bytes_per_second=2000))
    failed = failure(url, FetchLimits(seconds=1.5, min_bytes_per_second=0, allow_private=True))
    assert failed.reason == "Timeout" and time.monotonic() - started < 3


def test_a_body_slower_than_the_minimum_rate_fails_at_the_window(origin):
    url = origin.route("/slow", Origin.trickle(DOC, bytes_per_second=2000))
    limits = FetchLimits(seconds=30, min_bytes_per_second=10_000, allow_private=True,
                         window_seconds=0.5)
    started = time.monotonic()
    assert failure(url, limits).reason == "TooSlow"
    assert time.monotonic() - started < 2
    fast = origin.route("/fast.xml", Origin.file(DOC))
    assert fetched(fast, limits)[0] == DOC


def test_a_body_cut_short_is_incomplete(origin):
    url = origin.route("/short", Origin.trickle(DOC[:1000], 100_000, announce=len(DOC)))
    assert failure(url).reason == "Incomplete"


def test_an_encoded_body_is_refused(origin):
    url = origin.route("/gz", Origin.file(DOC, extra="Content-Encoding: gzip\r\n"))
    failed = failure(url)
    assert (failed.reason, failed.details) == ("UnsupportedEncoding", {"encoding": "gzip"})


def test_nothing_listening_is_a_connection_error(origin):
    port = origin.port
    origin.close()
    assert failure(f"http://127.0.0.1:{port}/x").reason == "ConnectionError"


@pytest.mark.parametrize(("url", "allow_private"), [
    ("http://127.0.0.1/x.xml", False),
    ("http://10.0.0.8/x.xml", False),
    ("http://169.254.169.254/latest/meta-data/", True),
    ("ftp://example.com/x.xml", True),
    ("http://u:p@example.com/x.xml", True),
])
def test_input_urls_are_refused_by_name(url, allow_private):
    with pytest.raises(ServiceError) as refused:
        check_url(url, allow_private, INPUT_URL)
    assert refused.value.code == "INVALID_INPUT_URL" and refused.value.status == 400
    assert refused.value.details == {"parameter": "input_url"}


def test_a_url_is_shown_without_its_query_string():
    signed = "https://bucket.example/data/orders.xml?X-Amz-Signature=abc&X-Amz-Credential=k#f"
    assert shown(signed) == "https://bucket.example/data/orders.xml"
