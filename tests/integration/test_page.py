"""The web page (GET /, api/page.py), in a real browser: Playwright driving Debian's chromium
(`make install` puts it at /usr/bin/chromium) against the real stack. A person picks a file and
a format, converts, downloads the very bytes the CLI writes; sees an XML error's line and column;
with API keys on, types a key, is told plainly when it is wrong, and sees their jobs."""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

from api.page import PAGE_DIRECT_MIN_BYTES
from converter import OPTION_NAMES
from testkit.tcp_meter import TcpMeter
from testkit.throttle import pool_processes, throttled

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DOC = (b"<?xml version='1.0'?>\n<orders>\n"
       + b"".join(b"  <order id='%d'><customer>Ann %d</customer><total>%d.50</total></order>\n"
                  % (i, i, i) for i in range(1, 40))
       + b"</orders>\n")
MALFORMED = b"<root>\n  <a>one</a>\n  <b>two</a>\n</root>\n"
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def browser():
    # No skip: without chromium this fails (make install provides it).
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Console:
    """The page's console errors and uncaught exceptions (a CSP violation is one)."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def unexpected(self, *allowed_statuses: int) -> list[str]:
        allowed = [f"status of {status}" for status in allowed_statuses]
        return [e for e in self.errors if not any(a in e for a in allowed)]


@pytest.fixture
def page(browser: Browser):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


def record_stages(page: Page) -> None:
    """Keep every text the progress line shows (window.stages), to see the upload phase."""
    page.evaluate("""() => {
        window.stages = [];
        const stage = document.getElementById("stage");
        new MutationObserver(() => window.stages.push(stage.textContent))
            .observe(stage, {childList: true, characterData: true, subtree: true});
    }""")


def convert(page: Page, path: Path | dict, fmt: str) -> None:
    page.set_input_files("#file", path)
    page.select_option("#format", fmt)
    page.click("#convert")


def download(page: Page, link: str = "#download") -> bytes:
    with page.expect_download() as info:
        page.click(link)
    return Path(info.value.path()).read_bytes()


def test_the_page_is_served_safely_with_a_form_from_the_options(stack):
    response = requests.get(stack.url("/"), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "http" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    html = response.text
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert "<style" not in html and " style=" not in html and "http" not in html
    for name in OPTION_NAMES:  # the form is generated from optionspec
        assert f'name="{name}"' in html, name
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    assert {Path(a.split("?")[0]).suffix for a in assets} == set(types)
    for asset in assets:
        served = requests.get(stack.url(asset), timeout=10)
        assert served.status_code == 200
        assert served.headers["Content-Type"].startswith(types[Path(asset.split("?")[0]).suffix])
        assert "immutable" in served.headers["Cache-Control"]
        unversioned = requests.get(stack.url(asset.split("?")[0]), timeout=10)
        assert unversioned.headers["Cache-Control"] == "no-cache"
        again = requests.get(stack.url(asset.split("?")[0]), timeout=10,
                             headers={"If-None-Match": served.headers["ETag"]})
        assert again.status_code == 304
    for missing in ("/static/index.html", "/static/nope.js", "/static/..%2Fpage.py"):
        assert requests.get(stack.url(missing), timeout=10).status_code == 404


def test_a_person_converts_a_file_to_csv_and_downloads_it(stack, page, cli_output, tmp_path):
    source = tmp_path / "orders.xml"
    source.write_bytes(DOC)
    console = Console(page)
    page.goto(stack.url("/"))
    expect(page.locator("#key-section")).to_be_hidden()  # AUTH_MODE=none: no key to ask for
    # Every control has a label.
    unlabelled = page.evaluate("""() => [...document.querySelectorAll("input, select")]
        .filter(e => !e.labels || e.labels.length === 0).map(e => e.id)""")
    assert unlabelled == []
    record_stages(page)
    convert(page, source, "csv")
    expect(page.locator("#download")).to_be_visible()
    expect(page.locator("#stage")).to_contain_text("Done")
    assert any(s.startswith("Uploading") for s in page.evaluate("window.stages"))
    assert page.locator("#progress").get_attribute("value") == "100"
    assert download(page) == cli_output(source, "csv")
    # The recent jobs list shows it.
    row = page.locator("#jobs-body tr", has_text="orders.xml").first
    expect(row).to_contain_text("succeeded")
    expect(row).to_contain_text("csv")
    assert console.unexpected() == []


def test_a_malformed_file_shows_its_error_with_line_and_column(stack, page):
    console = Console(page)
    page.goto(stack.url("/"))
    page.set_input_files("#file", {"name": "broken.xml", "mimeType": "application/xml",
                                   "buffer": MALFORMED})
    page.focus("#convert")
    page.keyboard.press("Enter")  # keyboard alone
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(page.locator("#error-position")).to_have_text(re.compile(r"^Line 3, column \d+$"))
    expect(page.locator("#error-code")).to_have_text("Code: XML_PARSE_ERROR")
    job = requests.get(stack.url("/jobs?limit=1"), timeout=10).json()["jobs"][0]
    assert job["input"]["filename"] == "broken.xml" and job["status"] == "failed"
    where = job["error"].get("details") or job["error"]
    expect(page.locator("#error-position")).to_have_text(
        f"Line {where['line']}, column {where['column']}")
    expect(page.locator("#error-message")).to_have_text(job["error"]["message"])
    # The end tag's position beside it; the message names where the element left open began.
    assert job["error"]["message"] == (
        "Opening and ending tag mismatch: <b> opened on line 3 closed by </a>")
    expect(page.locator("#download")).to_be_hidden()
    assert console.unexpected() == []


def test_with_api_keys_a_person_enters_theirs(keyed_stack, page, cli_output, tmp_path):
    key = keyed_stack.key("page-visitor")["api_key"]
    source = tmp_path / "keyed-orders.xml"
    source.write_bytes(DOC)
    console = Console(page)
    page.goto(keyed_stack.url("/"))  # the page itself needs no key
    expect(page.locator("#key-section")).to_be_visible()
    expect(page.locator("#jobs-note")).to_have_text("Enter your API key to see your jobs.")

    page.fill("#api-key", "xck_not-a-real-key")
    convert(page, source, "csv")
    expect(page.locator("#error-message")).to_contain_text("Your API key was not accepted")
    expect(page.locator("#api-key")).to_be_focused()

    page.fill("#api-key", key)
    page.click("#convert")
    expect(page.locator("#download")).to_be_visible()
    assert download(page) == cli_output(source, "csv")
    row = page.locator("#jobs-body tr", has_text="keyed-orders.xml").first
    expect(row).to_contain_text("succeeded")
    assert download(page, "#jobs-body tr >> text=Download") == cli_output(source, "csv")

    # The key lives in this tab's sessionStorage, nowhere else.
    assert page.evaluate("Object.values(sessionStorage)") == [key]
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    assert console.unexpected(401) == []
    if shot := os.environ.get("PAGE_SCREENSHOT"):  # for a person to look at
        page.screenshot(path=shot, full_page=True)


# -- a job longer than the page's `wait`: followed over its event stream, not polled


LONG_INDENT = "2"
LONG_SHARE = 0.05  # of the CPU, for the run of the long job (testkit/throttle.py)


@pytest.fixture(scope="module")
def long_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 MB that, as JSON indented by LONG_INDENT (convert_long) by a run given LONG_SHARE of
    the CPU, converts for several seconds (about 3x the page's POST /jobs?wait=2), long enough
    for the progress to move after it."""
    from bench.generate import generate

    path = tmp_path_factory.mktemp("long") / "long.xml"
    generate(32, path)
    return path


def convert_long(page: Page, path: Path) -> None:
    page.set_input_files("#file", path)
    page.select_option("#format", "json")
    page.click("#more-options summary")
    page.fill("#opt-indent", LONG_INDENT)
    page.click("#convert")


def requested_paths(stack) -> list[str]:
    text = (stack.logs_dir / "api.log").read_text(encoding="utf-8", errors="replace")
    return [line["path"] for line in map(json.loads, filter(None, text.split("\n")))
            if "path" in line and "status" in line]


def follows_over_the_stream(stack, page: Page) -> None:
    """The page showed the job's progress as it moved, from its event stream alone."""
    stages = page.evaluate("window.stages")
    converting = {s for s in stages if s.startswith("Converting… ")}
    assert len(converting) >= 2, stages  # the progress moved while the job ran
    paths = requested_paths(stack)
    streamed = [p for p in paths if p.endswith("/events")]
    assert streamed, paths
    assert streamed[-1][: -len("/events")] not in paths  # pushed: the job was never polled


def test_the_page_follows_a_long_job_over_its_event_stream(stack, page, long_input):
    console = Console(page)
    page.goto(stack.url("/"))
    record_stages(page)
    with throttled(pool_processes(stack.workers), share=LONG_SHARE):
        convert_long(page, long_input)
        expect(page.locator("#download")).to_be_visible(timeout=90_000)
    follows_over_the_stream(stack, page)
    assert console.unexpected() == []


def test_with_api_keys_the_page_reads_the_stream_with_its_key(keyed_stack, page, long_input):
    key = keyed_stack.key("page-streamer")["api_key"]
    console = Console(page)
    page.goto(keyed_stack.url("/"))
    page.fill("#api-key", key)
    record_stages(page)
    with throttled(pool_processes(keyed_stack.workers), share=LONG_SHARE):
        convert_long(page, long_input)
        expect(page.locator("#download")).to_be_visible(timeout=90_000)
    follows_over_the_stream(keyed_stack, page)
    assert console.unexpected() == []


# -- a large file straight into the object store (S3 storage: POST /uploads)


@pytest.fixture(scope="module")
def large_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Past the page's PAGE_DIRECT_MIN_BYTES: three parts of a direct upload."""
    from bench.generate import generate

    path = tmp_path_factory.mktemp("large") / "large.xml"
    generate(PAGE_DIRECT_MIN_BYTES / 1e6 + 1, path)
    return path


@contextlib.contextmanager
def bucket_cors(s3_server, origin: str):
    """The bucket's CORS rules let `origin`'s pages PUT parts (as docs/deployment.md says to
    set them); removed afterwards (SeaweedFS then allows every origin)."""
    client = s3_server.client()
    client.put_bucket_cors(Bucket=s3_server.BUCKET, CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": [origin], "AllowedMethods": ["PUT"], "AllowedHeaders": ["*"],
        "MaxAgeSeconds": 600}]})
    try:
        yield
    finally:
        client.delete_bucket_cors(Bucket=s3_server.BUCKET)


def sent(page: Page) -> list[tuple[str, str]]:
    """(method, URL) of every request the page sends from now on."""
    requests_sent: list[tuple[str, str]] = []
    page.on("request", lambda r: requests_sent.append((r.method, r.url)))
    return requests_sent


def test_a_large_file_goes_straight_into_the_object_store(s3_stack, s3_server, page,
                                                          large_input, cli_output):
    page_answer = requests.get(s3_stack.url("/"), timeout=10)
    # The page's script may reach the store, and only that besides its own origin.
    assert f"connect-src 'self' {s3_server.endpoint};" in page_answer.headers[
        "Content-Security-Policy"]
    # The page is opened through a meter of the bytes the API receives.
    with TcpMeter(s3_stack.api_port) as meter:
        site = f"http://127.0.0.1:{meter.port}"
        with bucket_cors(s3_server, site):
            console = Console(page)
            requests_sent = sent(page)
            page.goto(site + "/")
            record_stages(page)
            convert(page, large_input, "csv")
            expect(page.locator("#download")).to_be_visible(timeout=90_000)
            received = meter.received
            assert download(page) == cli_output(large_input, "csv")
    assert received < 64 * 1024, f"the API received {received} bytes"  # not the file's 18 MB
    parts = [url for method, url in requests_sent
             if method == "PUT" and url.startswith(s3_server.endpoint)]
    assert len(parts) == 3, requests_sent  # 8 MiB parts
    assert any(method == "POST" and "upload_id=" in url for method, url in requests_sent)
    assert any(s.startswith("Uploading… 100%") for s in page.evaluate("window.stages"))
    assert console.unexpected() == []


def test_a_store_refusing_the_page_falls_back_to_the_api(s3_stack, s3_server, page,
                                                         large_input, cli_output):
    with TcpMeter(s3_stack.api_port) as meter:
        site = f"http://127.0.0.1:{meter.port}"
        with bucket_cors(s3_server, "https://another-site.example"):
            console = Console(page)
            requests_sent = sent(page)
            page.goto(site + "/")
            convert(page, large_input, "csv")
            expect(page.locator("#download")).to_be_visible(timeout=90_000)
            received = meter.received
            assert download(page) == cli_output(large_input, "csv")
    assert received > large_input.stat().st_size  # the file went through the API after all
    given_up = [url for method, url in requests_sent if method == "DELETE" and "/uploads/" in url]
    assert len(given_up) == 1, requests_sent  # the direct upload's quota slot back at once
    # The browser's own report of the refusal, and nothing else.
    assert [e for e in console.unexpected() if "CORS" not in e and "ERR_FAILED" not in e] == []
