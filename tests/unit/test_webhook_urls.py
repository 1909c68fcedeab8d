"""common/webhook_urls.py: a webhook URL is read one way only — the way the delivery connects.

The URLs below were each read one way by the old check (urlsplit, IDNA 2003) and another by the
HTTP client (urllib3, UTS 46, a browser's backslash): each is now refused or normalised as the
client does. DNS: no DNS server runs here, so the resolver is replaced (socket.getaddrinfo,
monkeypatched) only where a test needs a name to resolve to a chosen address."""

from __future__ import annotations

import pytest
from webhook_dns import FakeDns

from common.errors import ServiceError
from common.outbound_urls import Target, check_url, parse, resolve


def refused(url: str, allow_private: bool = True) -> str:
    with pytest.raises(ServiceError) as caught:
        check_url(url, allow_private)
    assert (caught.value.status, caught.value.code) == (400, "INVALID_WEBHOOK_URL")
    assert caught.value.details == {"parameter": "webhook_url"}
    return caught.value.message


@pytest.mark.parametrize("url", [
    "http://127.0.0.1\\x.example/",  # urlsplit: one host; a browser or WHATWG: 127.0.0.1
    "http://hooks.example\\@127.0.0.1/",
    "http://hooks.example/a\\b",
])
def test_a_backslash_anywhere_is_refused(url):
    assert "backslash" in refused(url)


@pytest.mark.parametrize("url", [
    "http://user:pass@hooks.example/", "http://user@hooks.example/", "http://@hooks.example/",
    "http://hooks.example@127.0.0.1/", "http://a@b@hooks.example/",
])
def test_userinfo_is_refused(url):
    assert "credentials" in refused(url)


@pytest.mark.parametrize("url", [
    "http://hooks.example/\x00", "http://hooks\t.example/", "http://hooks.example/a b",
    "http://hooks.example/\r\nX-Injected: 1", "http://hooks.example\n/", "http://hooks.\x85example/",
    "http://hooks.example/\x7f",
])
def test_control_characters_and_spaces_are_refused(url):
    refused(url)


@pytest.mark.parametrize("url", ["http:///hook", "http://:80/hook", "https://", "http://?x",
                                 "http://#x"])
def test_an_empty_host_is_refused(url):
    refused(url)


@pytest.mark.parametrize("url", ["http://hooks.example:0/", "http://hooks.example:65536/",
                                 "http://hooks.example:99999/", "http://hooks.example:+80/",
                                 "http://hooks.example:8o/", "http://[::1]:x/",
                                 "http://hooks.example:١٢/"])
def test_a_port_out_of_range_is_refused(url):
    refused(url)


@pytest.mark.parametrize("url", [
    "http://\u200b.example/",  # a zero-width space: an empty label once mapped
    "http://a\ufffdb.example/",  # not a character IDNA allows
    "http://xn--a.example\u0301/",  # a combining mark opening a label
    "http://hooks%2eexample/", "http://127.0.0.1%2f.example/",  # urllib3 percent-decodes hosts
    "http://a..example/", "http://-a.example/", "http://a_b$.example/",
    "http://[::1/", "http://[not-v6]/",
])
def test_a_host_that_cannot_be_read_one_way_is_refused(url):
    refused(url)


@pytest.mark.parametrize(("url", "host"), [
    ("http://faß.example/", "xn--fa-hia.example"),  # UTS 46 (nontransitional), as requests
    ("http://FAß.Example/", "xn--fa-hia.example"),
    ("http://ａｂｃ.example/", "abc.example"),  # fullwidth letters mapped
    ("http://a\u3002b.example/", "a.b.example"),  # an ideographic full stop is a dot
    ("http://Hooks.EXAMPLE./", "hooks.example."),
    ("http://[::FFFF:7F00:1]:8080/", "::ffff:7f00:1"),
])
def test_hosts_are_normalised_as_the_http_client_does(url, host):
    assert parse(url).host == host


def test_the_request_target_is_the_path_and_query_in_ascii():
    target = parse("https://hooks.example:8443/hooks/café?x=1&y=é#fragment")
    assert target == Target("https", "hooks.example", 8443, "/hooks/caf%C3%A9?x=1&y=%C3%A9")
    assert target.host_header == "hooks.example:8443"
    assert parse("https://hooks.example").path == "/"
    assert parse("http://hooks.example:80?a").host_header == "hooks.example"
    assert parse("http://[::1]:81/").host_header == "[::1]:81"


def test_faß_is_checked_and_resolved_as_the_name_connected_to(monkeypatch):
    dns = FakeDns(monkeypatch, {"xn--fa-hia.example": ["93.184.216.34"],
                                "fass.example": ["127.0.0.1"]})
    assert check_url("http://faß.example/hook", allow_private=False)
    assert dns.asked == ["xn--fa-hia.example"]  # never fass.example (IDNA 2003)


def test_every_address_must_be_public(monkeypatch):
    FakeDns(monkeypatch, {"mixed.example": ["93.184.216.34", "10.0.0.7"],
                          "v6.example": ["2606:2800:220:1::1", "fd00::1"]})
    assert "non-public" in refused("http://mixed.example/", allow_private=False)
    assert "non-public" in refused("https://v6.example/", allow_private=False)


def test_resolve_gives_the_checked_addresses_once(monkeypatch):
    dns = FakeDns(monkeypatch, {"hooks.example": ["93.184.216.34", "93.184.216.35",
                                                  "93.184.216.34"]})
    addresses = resolve(parse("http://hooks.example/"), allow_private=False)
    assert [str(a) for a in addresses] == ["93.184.216.34", "93.184.216.35"]
    assert dns.asked == ["hooks.example"]


def test_a_name_that_does_not_resolve_is_refused():
    assert "does not resolve" in refused("http://nowhere.invalid/", allow_private=False)


def test_allow_private_lifts_the_address_rule_and_not_the_syntax():
    assert check_url("http://127.0.0.1:9/hook", allow_private=True)
    assert "non-public" in refused("http://127.0.0.1:9/hook", allow_private=False)
    refused("http://127.0.0.1\\x.example/", allow_private=True)
