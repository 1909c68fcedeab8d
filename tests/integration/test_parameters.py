"""Every query parameter of every route in api/openapi.yaml, sent with arbitrary text to the real
API (gunicorn + gevent, a Celery worker, redis-server): never a 5xx, every 4xx in the error
envelope, and a 400 names the parameter it refuses (`details.parameter`).

The values are Hypothesis's: any text (a digit that is not ASCII, `NaN`, control characters,
long runs), any bytes percent-encoded (not UTF-8 at all), and for `cursor` anything a client
could base64 into one (NaN, infinities, huge integers, a wrong id). One parameter at a time,
the others absent; a route that needs a body gets a small XML document, so that a parameter is
the only thing wrong with the request. The header parameters of the routes of jobs (Range,
If-Range, Idempotency-Key, Content-Encoding, X-Request-ID) get any text a header can carry.
Schemathesis (test_contract.py) checks the rest of the contract; this file is about the
parameters alone, with values a schema would never suggest.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_from_bytes

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import contract

EXAMPLES = 25  # per parameter
BODY = b"<orders><order id='1'><total>3</total></order></orders>"
# A concrete value for each path parameter (each route is about its query).
PATH_VALUES = {"conversion": "xml-to-json", "asset": "docs.js", "name": "app.js",
               "job_id": "{job_id}",  # a real job, where a test needs one
               "upload_id": "3f0c8a52-2b4e-4d7a-9a45-1c9a4b1f2e3d"}  # none: local storage
CODE = re.compile(r"[A-Z][A-Z0-9_]*")
# Under gunicorn's 4094-byte request line (a longer one is refused before the app: 414/400
# without a parameter to name), percent-encoding included.
MAX_TEXT = 300


def document_parameters(where: str) -> list[tuple[str, str, str]]:
    """(method, path, parameter) for every parameter `in: where` the served document lists."""
    document = contract.document()
    found = []
    for template, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for parameter in [*item.get("parameters", []), *operation.get("parameters", [])]:
                if "$ref" in parameter:
                    name = parameter["$ref"].rsplit("/", 1)[1]
                    parameter = document["components"]["parameters"][name]
                if parameter["in"] == where:
                    path = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m[1]], template)
                    found.append((method.upper(), path, parameter["name"]))
    return found


PARAMETERS = document_parameters("query")
# The headers of the routes of jobs; not DELETE's (it would delete the job the others read).
HEADERS = [(method, path, name) for method, path, name in document_parameters("header")
           if path.startswith(("/jobs", "/convert")) and method != "DELETE"]

# Values a client may type, and the ones that used to answer 500/503.
KNOWN_HOSTILE = ["²", "٣", "NaN", "nan", "inf", "-1", "+1", " 1", "1 ", "0x10", "1e3", "1.5",
                 "", "\x00", "𝟙", "999999999999999999999999", "9" * MAX_TEXT, "ｆｏｏ", "null",
                 "true", "[]", "{}", '{"a": NaN}', "%", "\ud7ff", "\u202e"]


def _cursor(value: object, job_id: object) -> str:
    raw = json.dumps([value, job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


cursors = st.builds(
    _cursor,
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-10**30,
                                                                           max_value=10**30),
              st.text(max_size=20), st.none(), st.booleans()),
    st.one_of(st.uuids().map(str), st.text(max_size=40), st.integers()))

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=MAX_TEXT)


def encoded(value: str | bytes) -> str:
    return quote_from_bytes(value, safe="") if isinstance(value, bytes) else quote(value, safe="")


values = st.one_of(texts.map(encoded), st.binary(max_size=MAX_TEXT).map(encoded),
                   st.sampled_from(KNOWN_HOSTILE).map(encoded))


def send(api_url: str, method: str, path: str, name: str, value: str) -> requests.Response:
    body = BODY if method == "POST" else None
    headers = {"Content-Type": "application/xml"} if body else {}
    # `wait` makes a valid submission wait for its job: a small one, done in a moment.
    return requests.request(method, f"{api_url}{path}?{name}={value}", data=body,
                            headers=headers, timeout=90)


def check(response: requests.Response, name: str) -> None:
    said = f"{response.request.method} {response.request.url} -> {response.status_code} " \
           f"{response.text[:500]}"
    assert response.status_code < 500, said
    if response.status_code < 400:
        return
    assert response.headers["Content-Type"] == "application/json", said
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, said
    assert CODE.fullmatch(body["error"]["code"]), said
    if response.status_code == 400:
        assert body["error"]["details"].get("parameter") == name, said


EXAMPLE_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                            database=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("method, path, name", PARAMETERS,
                         ids=[f"{m} {p} {n}" for m, p, n in PARAMETERS])
def test_any_value_of_a_query_parameter_is_refused_by_name_or_served(stack, method, path, name):
    strategy = st.one_of(values, cursors) if name == "cursor" else values

    @EXAMPLE_SETTINGS
    @given(strategy)
    def any_value(value: str) -> None:
        check(send(stack.api_url, method, path, name, value), name)

    any_value()


# What a header may hold on the wire (requests refuses line breaks; gunicorn other controls).
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                      exclude_characters="\x7f"), max_size=MAX_TEXT)


@pytest.mark.parametrize("method, path, name", HEADERS,
                         ids=[f"{m} {p} {n}" for m, p, n in HEADERS])
def test_any_value_of_a_header_parameter_is_refused_by_name_or_served(stack, method, path,
                                                                      name):
    """The same for the headers the document lists as parameters (Range, If-Range,
    Idempotency-Key, Content-Encoding, X-Request-ID) on the routes of jobs; a job's route gets
    a job that exists, so that Range and If-Range meet a real result."""
    job_id = _finished_job(stack)
    target = path.replace("{job_id}", job_id)

    @EXAMPLE_SETTINGS
    @given(header_values)
    def any_value(value: str) -> None:
        body = BODY if method == "POST" else None
        headers = {"Content-Type": "application/xml"} if body else {}
        response = requests.request(method, stack.url(target), data=body, timeout=90,
                                    headers={**headers, name: value.encode("latin-1")})
        check(response, name)

    any_value()


_finished: dict[str, str] = {}


def _finished_job(stack) -> str:
    if "id" not in _finished:
        created = requests.post(stack.url("/jobs"), data=BODY, timeout=30,
                                headers={"Content-Type": "application/xml"})
        _finished["id"] = stack.wait_finished(created.json()["id"])["id"]
    return _finished["id"]


def test_the_document_lists_the_parameters_this_file_covers():
    """The list above is the document's: a parameter added there is fuzzed here too."""
    names = {name for _, _, name in PARAMETERS}
    assert {"limit", "cursor", "status", "tag", "wait", "format", "metadata", "webhook_url",
            "filename"} <= names


@pytest.mark.parametrize("method, path, name, value", [
    ("GET", "/jobs", "limit", "²"),
    ("POST", "/jobs", "wait", "²"),
    ("POST", "/convert/xml-to-json", "wait", "²"),
    ("GET", "/jobs", "cursor", _cursor(float("nan"), "3f0c6a8e-1b2c-4d5e-8f90-a1b2c3d4e5f6")),
    ("GET", "/jobs", "cursor", _cursor(float("inf"), "3f0c6a8e-1b2c-4d5e-8f90-a1b2c3d4e5f6")),
])
def test_the_reported_cases_are_400_naming_their_parameter(stack, method, path, name, value):
    """Issue 18: these answered 500 (`isdigit` is true for '²', `int` fails) and 503 (a
    cursor holding NaN reached Redis)."""
    response = send(stack.api_url, method, path, name, encoded(value))
    assert response.status_code == 400, response.text
    check(response, name)
