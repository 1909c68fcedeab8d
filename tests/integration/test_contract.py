"""The service answers as its contract says: schemathesis generates requests from api/openapi.yaml
for every operation and sends them to the real stack (gunicorn, a Celery worker, redis-server),
and every answer must conform to the document — no 5xx, a documented status code, content type,
headers and body:

- under AUTH_MODE=none (`stack`);
- under AUTH_MODE=api_key (`keyed_stack`) with a valid key, and without one, when every
  operation but the open ones (health, the document, the pages) must answer 401;
- as a state machine following the document's links (submit, then read, download and delete
  the job it made), so that routes on a job are exercised with real ids, not only with 404s.

The number of examples is bounded (EXAMPLES per operation; the state machine's scenarios and
steps) so that the file takes about a minute. The seed is fixed, so a run is reproducible; set
CONTRACT_SEED to explore other examples.

Two things are arranged on purpose:
- `webhook_url` is replaced by a loopback address whose port refuses connections: the service
  resolves and calls webhook URLs, and a test sends nothing off this machine;
- the API key used has limits this run does not reach (the test stacks' own limits are lifted
  too, testkit/commands.py): 429 and the RateLimit-* headers are checked wherever they appear,
  and by test_limits.py.
"""

from __future__ import annotations

import contextlib
import copy
import os
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import contract

EXAMPLES = 50  # per operation and run
SEED = int(os.environ.get("CONTRACT_SEED", "20261125"))
LOOPBACK_WEBHOOK = "http://127.0.0.1:9/contract-hook"  # the discard port: nothing listens
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
SERVER_REFUSALS = (414, 431)  # request line or headers too long: gunicorn's, before the app
OPEN_OPERATIONS = {(path, method) for path, item in contract.document()["paths"].items()
                   for method, operation in item.items()
                   if method != "parameters" and operation.get("security") == []}

CONFIG = schemathesis.Config.from_dict({
    "seed": SEED,
    "generation": {"mode": "all", "max-examples": EXAMPLES},
    # Examples (the document's own) and fuzzing; the coverage phase's exhaustive boundary
    # values would cost minutes. The state machine runs on its own, below.
    "phases": {"coverage": {"enabled": False}},
})
# A copy: loading it rewrites the dictionary in place.
schema = schemathesis.openapi.from_dict(copy.deepcopy(contract.document()), config=CONFIG)

# No shrinking: a failure is reported as found (with its curl line), in bounded time.
EXAMPLE_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                            database=None, phases=[Phase.explicit, Phase.generate],
                            suppress_health_check=list(HealthCheck))


def keep_on_this_machine(case: schemathesis.Case) -> None:
    """No webhook may be sent anywhere but here (see the module's docstring)."""
    if case.query and "webhook_url" in case.query:
        case.query["webhook_url"] = LOOPBACK_WEBHOOK
    if isinstance(case.body, dict) and "webhook_url" in case.body:
        case.body["webhook_url"] = LOOPBACK_WEBHOOK


def call(case: schemathesis.Case, base_url: str, headers: dict[str, str] | None = None):
    keep_on_this_machine(case)
    return case.call(base_url=base_url, headers=headers, timeout=90)


def checks_for(case: schemathesis.Case, response) -> list:
    if response.status_code == 501 and case.path == "/uploads":
        # Local storage has no direct uploads: a documented 501 DIRECT_UPLOAD_UNAVAILABLE
        # (clients fall back to POST /jobs), not a failure; the rest of the checks still hold.
        return [check for check in CHECKS if check is not not_a_server_error]
    return CHECKS


def conforms(case: schemathesis.Case, response) -> None:
    case.validate_response(response, checks=checks_for(case, response))


@pytest.fixture(scope="module")
def contract_key(keyed_stack) -> dict:
    """A key whose limits this run does not reach (keyed_stack's default is 1000/min)."""
    return keyed_stack.key("openapi-contract", "--requests-per-minute", "100000",
                           "--max-active-jobs", "1000")


def test_the_served_document_is_the_one_in_the_package(stack):
    served = requests.get(stack.url("/openapi.json"), timeout=10)
    assert served.status_code == 200 and served.json() == contract.document()


@schema.parametrize()
@EXAMPLE_SETTINGS
def test_conforms_without_authentication(case, stack):
    """AUTH_MODE=none."""
    conforms(case, call(case, stack.api_url))


@schema.parametrize()
@EXAMPLE_SETTINGS
def test_conforms_with_an_api_key(case, keyed_stack, contract_key):
    conforms(case, call(case, keyed_stack.api_url, contract_key["headers"]))


@schema.parametrize()
@settings(EXAMPLE_SETTINGS, max_examples=4)
def test_without_an_api_key_only_open_routes_answer(case, keyed_stack):
    """Every operation but the open ones answers 401, with no Authorization header, with an
    empty Bearer token (schemathesis sends one for the security scheme) and with a key that does
    not exist."""
    for authorization in (None, (case.headers or {}).get("Authorization"), "Bearer xk_not_a_key"):
        case.headers = {k: v for k, v in (case.headers or {}).items() if k != "Authorization"}
        if authorization is not None:
            case.headers["Authorization"] = authorization
        response = call(case, keyed_stack.api_url)
        conforms(case, response)
        if (case.path, case.method.lower()) in OPEN_OPERATIONS:
            assert response.status_code != 401, response.text
            continue
        if response.status_code in SERVER_REFUSALS:
            continue  # refused by gunicorn before the app: nothing reached
        if response.status_code == 404 and response.json()["error"]["code"] == "NOT_FOUND":
            continue  # no such route (a conversion that does not exist): nothing to protect
        assert response.status_code == 401, (authorization, response.text)
        assert response.headers["www-authenticate"][0].startswith("Bearer")
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"
        assert "ratelimit-limit" not in response.headers  # a 401 is never counted


# -- following the links: real jobs


@pytest.fixture
def workflow(keyed_stack, contract_key) -> type:
    base_url, headers = keyed_stack.api_url, contract_key["headers"]

    class Workflow(schema.as_state_machine()):
        steps: list[tuple[str, str, int]] = []

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            keep_on_this_machine(case)
            return {"base_url": base_url, "headers": headers, "timeout": 90}

        def after_call(self, response, case: schemathesis.Case) -> None:
            self.steps.append((case.method, case.path, response.status_code))

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            case.validate_response(response, checks=checks_for(case, response),
                                   transport_kwargs=kwargs)

    return Workflow


def test_conforms_along_the_links(workflow):
    # Which steps can follow depends on the server's answers (202 or 200, 204 or 202…), so
    # Hypothesis may find a scenario's prefix leading elsewhere on a later run and stop
    # generating (FlakyStrategyDefinition). Schemathesis's own runner counts this as a pass too:
    # every answer seen until then was checked; a check that fails raises FailureGroup instead.
    with contextlib.suppress(FlakyStrategyDefinition):
        workflow.run(settings=settings(EXAMPLE_SETTINGS, max_examples=25,
                                       stateful_step_count=10))
    followed = [(method, path) for method, path, status in workflow.steps
                if path.startswith("/jobs/") and status != 404]
    assert len(followed) >= 5, workflow.steps  # jobs made by POST were read, downloaded, deleted


# -- the page


def test_docs_renders_the_document_from_this_origin_alone(stack):
    """GET /docs in a real browser (Debian's chromium, as tests/integration/test_page.py):
    Swagger UI shows every operation, loads nothing from another origin (it works offline) and
    logs no error (a Content-Security-Policy violation would be one)."""
    from playwright.sync_api import sync_playwright

    operations = sum(1 for item in contract.document()["paths"].values()
                     for method in item if method in ("get", "post", "delete"))
    errors: list[str] = []
    fetched: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
            page.on("request", lambda r: fetched.append(r.url))
            page.goto(stack.url("/docs"))
            page.wait_for_selector("#operations-jobs-createJob", timeout=30_000)
            assert page.locator(".opblock").count() == operations
            page.click("#operations-jobs-createJob .opblock-summary-control")
            page.click("#operations-jobs-createJob .try-out__btn")
            assert page.locator("#operations-jobs-createJob input[type=file]").count() == 1
        finally:
            browser.close()
    assert errors == []
    assert fetched and all(url.startswith((stack.api_url + "/", "data:")) for url in fetched)


# -- a partial download


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "yaml", "text"])
def test_a_partial_download_conforms(stack, fmt):
    """`Range` on a finished job's result: 206 with the format's own content type (the same as
    the whole result's), as the document says. Generated requests rarely ask a real job for a
    range it has, so this one is asked on purpose."""
    created = requests.post(stack.url("/jobs"), params={"format": fmt}, timeout=30,
                            data=b"<orders><order id='1'><total>3</total></order>"
                                 b"<order id='2'><total>4</total></order></orders>",
                            headers={"Content-Type": "application/xml"})
    assert created.status_code == 202, created.text
    job = stack.wait_finished(created.json()["id"])
    operation = schema["/jobs/{job_id}/result"]["GET"]
    whole = requests.get(stack.url(f"/jobs/{job['id']}/result"), timeout=30)
    for header in ("bytes=0-1", "bytes=1-", "bytes=-2"):
        case = operation.Case(path_parameters={"job_id": job["id"]}, headers={"Range": header})
        response = call(case, stack.api_url)
        assert response.status_code == 206, response.text
        assert response.headers["content-type"] == [whole.headers["Content-Type"]]
        conforms(case, response)
