"""api/openapi.yaml, the HTTP contract: a valid OpenAPI 3.1 document, in step with the code it
describes (routes, open routes, enums, error codes, the job resource, the conversion options),
served at /openapi.json and rendered at /docs with assets from this origin only. The service
itself is checked against it in tests/integration/test_contract.py."""

from __future__ import annotations

import re
from dataclasses import fields

import jsonschema
import pytest
from openapi_spec_validator import validate

import converter.errors
from api import contract, create_app
from api.assets import IMMUTABLE
from api.auth import OPEN_BLUEPRINTS
from api.legacy import LEGACY_FORMATS
from common import errors
from common.errors import ServiceError
from common.settings import load_settings
from converter import FORMATS, OPTION_NAMES, ConversionError, Options, parse_options
from jobs import Job, JobStatus
from jobs.resource import job_resource
from testkit.commands import service_env
from testkit.waiting import free_port

DOC = contract.document()
SCHEMAS = DOC["components"]["schemas"]
METHODS = ("get", "put", "post", "delete", "patch")
JOB_ID = "3f0c8a52-2b4e-4d7a-9a45-1c9a4b1f2e3d"
# gunicorn's own answers, before the app (api/gunicorn_worker.py); 501 may be either's
SERVER_REFUSALS = ("414", "431", "501")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    # No Redis is needed to build the app, nor by the routes asked here.
    dead = f"redis://127.0.0.1:{free_port()}/0"
    return create_app(load_settings(service_env(dead, tmp_path_factory.mktemp("data"))))


def operations(document=DOC):
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def resolve(node, document=DOC):
    while isinstance(node, dict) and "$ref" in node:
        target = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def schema_validator(name: str) -> jsonschema.Draft202012Validator:
    """A validator for components.schemas[name], resolving the document's references."""
    return jsonschema.Draft202012Validator(
        {**DOC, "$ref": f"#/components/schemas/{name}"},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def codes_in(node) -> set[str]:
    """Every error code named by a `code` property's const/enum anywhere below `node`."""
    found: set[str] = set()
    if isinstance(node, dict):
        code = node.get("code")
        if isinstance(code, dict):
            found.update(code.get("enum", []))
            if "const" in code:
                found.add(code["const"])
        for value in node.values():
            found |= codes_in(value)
    elif isinstance(node, list):
        for value in node:
            found |= codes_in(value)
    return found


# Codes that only the commands print, never an HTTP answer: xmlconv-admin's, and the local
# file's of `xmlconv convert|submit`.
COMMANDS_ONLY = {errors.KEY_NAME_TAKEN, errors.KEY_NOT_FOUND, converter.errors.INPUT_NOT_FOUND,
                 converter.errors.IO_ERROR}


def codes_of(module) -> set[str]:
    return {value for name, value in vars(module).items()
            if name.isupper() and isinstance(value, str) and value == name} - COMMANDS_ONLY


# -- the document


def test_the_served_document_is_a_valid_openapi_3_1_document():
    assert DOC["openapi"].startswith("3.1.")
    validate(DOC)


def test_the_document_as_written_is_valid_too():
    validate(contract.raw_document())


def test_every_route_of_the_app_is_in_the_document_and_nothing_else(app):
    routes = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        path = path.replace("{route}", "{conversion}")  # /convert/<any(…):route>
        routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, method, _ in operations()}
    assert routes == documented


def test_open_routes_are_exactly_those_of_the_open_blueprints(app):
    open_paths = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in OPEN_BLUEPRINTS:
            open_paths.add(re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule))
    assert "contract" in OPEN_BLUEPRINTS
    assert DOC["security"] == [{"bearerAuth": []}]
    assert DOC["components"]["securitySchemes"]["bearerAuth"] == {
        **DOC["components"]["securitySchemes"]["bearerAuth"], "type": "http", "scheme": "bearer"}
    for path, method, operation in operations():
        is_open = operation.get("security") == []
        assert is_open == (path in open_paths), (method, path)
        if not is_open:
            assert "401" in operation["responses"], (method, path)


def test_every_operation_is_named_and_every_error_response_is_the_envelope():
    ids = [operation["operationId"] for _, _, operation in operations()]
    assert len(ids) == len(set(ids))
    for path, method, operation in operations():
        assert {"414", "431"} <= set(operation["responses"]), (method, path)
        for status, response in operation["responses"].items():
            response = resolve(response)
            if status not in SERVER_REFUSALS:
                assert "X-Request-ID" in response.get("headers", {}), (method, path, status)
            if int(status) >= 400:
                schema = resolve(response["content"]["application/json"]["schema"])
                assert schema == SCHEMAS["Error"] or {
                    "$ref": "#/components/schemas/Error"} in schema["allOf"], (path, status)


def test_limited_answers_document_the_rate_limit_headers_and_refusals_retry_after():
    for path, method, operation in operations():
        if operation.get("security") == []:
            continue
        for status, response in operation["responses"].items():
            response = resolve(response)
            headers = response.get("headers", {})
            no_route = response.get("content", {}).get("application/json", {}).get(
                "schema") == {"$ref": "#/components/schemas/Error404"}  # not routed: no client
            if status not in ("401", "500", "503", *SERVER_REFUSALS) and not no_route:
                assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(
                    headers), (method, path, status)
            if status in ("429", "503"):
                assert resolve(headers["Retry-After"])["required"], (method, path, status)
        assert "WWW-Authenticate" in resolve(operation["responses"]["401"])["headers"]


def test_every_error_code_of_the_service_and_the_converter_is_documented():
    documented = codes_in(DOC["components"]) | set(SCHEMAS["JobErrorCode"]["enum"])
    assert codes_of(errors) | codes_of(converter.errors) == documented


def test_enums_are_the_codes():
    assert SCHEMAS["Format"]["enum"] == list(FORMATS)
    assert SCHEMAS["JobStatus"]["enum"] == list(JobStatus)
    assert SCHEMAS["JobResult"]["properties"]["content_type"]["enum"] == [
        f.content_type for f in FORMATS.values()]
    result = DOC["paths"]["/jobs/{job_id}/result"]["get"]["responses"]["200"]["content"]
    assert list(result) == [f.content_type for f in FORMATS.values()]
    legacy = DOC["paths"]["/convert/{conversion}"]["post"]
    (conversion,) = [p for p in legacy["parameters"] if p.get("name") == "conversion"]
    assert conversion["schema"]["enum"] == list(LEGACY_FORMATS)
    assert set(legacy["responses"]["200"]["content"]) == {
        FORMATS[fmt].content_type for fmt in LEGACY_FORMATS.values()}
    assert set(SCHEMAS["JobErrorCode"]["enum"]) == codes_of(converter.errors) | {
        errors.TIME_LIMIT_EXCEEDED, errors.MEMORY_LIMIT_EXCEEDED, errors.INPUT_MISSING,
        errors.WORKER_LOST, errors.INTERNAL_ERROR, errors.INPUT_FETCH_FAILED,
        errors.INSUFFICIENT_STORAGE}


# -- the conversion options, generated from optionspec


def test_the_yaml_leaves_the_options_to_optionspec():
    written = contract.raw_document()["components"]["schemas"]["ConversionOptions"]
    assert "properties" not in written  # no second copy to drift from the vocabulary
    served = SCHEMAS["ConversionOptions"]["properties"]
    assert all(schema["description"] for schema in served.values())


def test_every_option_is_a_parameter_and_a_form_field_of_each_upload():
    options = SCHEMAS["ConversionOptions"]["properties"]
    assert list(options) == list(OPTION_NAMES)
    assert {name: schema["default"] for name, schema in options.items()} == Options().to_dict()
    for path in ("/jobs", "/convert/{conversion}"):
        operation = DOC["paths"][path]["post"]
        names = [p["name"] for p in map(resolve, operation["parameters"]) if p["in"] == "query"]
        assert set(OPTION_NAMES) <= set(names) and len(names) == len(set(names))
        for media_type in ("multipart/form-data",):
            form = resolve(resolve(operation["requestBody"])["content"][media_type]["schema"])
            assert set(OPTION_NAMES) <= set(form["properties"])
            assert form["properties"]["file"]["contentMediaType"] == "application/octet-stream"
    assert "contract" not in str(DOC.keys()) and contract.MARKER not in str(DOC)


@pytest.mark.parametrize("name", OPTION_NAMES)
def test_each_options_documented_constraints_are_what_parse_options_accepts(name, accepted):
    schema = SCHEMAS["ConversionOptions"]["properties"][name]
    wire = contract.wire_schema(schema)
    kind = wire["type"]
    if "enum" in schema:
        for value in schema["enum"]:
            assert accepted(name, value) and accepted(name, value.upper())
        assert not accepted(name, "none-of-these")
    if kind == "integer":
        low, high = schema["minimum"], schema["maximum"]
        assert accepted(name, str(low)) and accepted(name, str(high))
        assert not accepted(name, str(low - 1)) and not accepted(name, str(high + 1))
        assert not accepted(name, "1.5")
    if kind == "boolean":
        assert accepted(name, "true") and accepted(name, "false")
        assert not accepted(name, "maybe")
    if kind == "string" and "enum" not in schema and schema["type"] != "array":
        top = schema["maxLength"]
        assert accepted(name, "a" * top) and not accepted(name, "a" * (top + 1))
        assert accepted(name, "") == (schema.get("minLength", 0) == 0 or "null" in schema["type"])
    if schema["type"] == "array":
        assert accepted(name, ",".join(f"n{i}" for i in range(schema["maxItems"])))
        assert not accepted(name, ",".join(f"n{i}" for i in range(schema["maxItems"] + 1)))
    if "pattern" in schema:  # every value it allows is accepted, and some it refuses are not
        assert accepted(name, "orders/order") and not accepted(name, "orders//order")
        pattern = re.compile(schema["pattern"])
        for blank in ("\x1c", "\x1f", "\x85", "\u2028", "\u3000", "\t"):
            assert not pattern.search(f"a{blank}b") and not accepted(name, f"a{blank}b")


def test_a_jobs_normalized_options_conform():
    given = {"namespaces": "STRIP", "force_list": "a,b", "indent": "2", "record_path": "/a/b/",
             "strip_whitespace": "no", "max_depth": "12", "separator": "|", "types": "infer",
             "attr_prefix": "", "text_key": "#t", "include_attributes": "1"}
    assert set(given) == {f.name for f in fields(Options)}
    normalized = parse_options(given).to_dict()
    schema_validator("ConversionOptions").validate(normalized)
    schema_validator("ConversionOptions").validate(parse_options({"indent": "0"}).to_dict())


# -- the job resource


def job(**changes) -> Job:
    base = {"id": JOB_ID, "status": "queued", "format": "csv", "options": {"namespaces": "strip"},
            "input_filename": "orders.xml", "input_size": 2048, "input_sha256": "ab" * 32,
            "created_at": 1764081045.5}
    return Job(**{**base, **changes})


def test_the_job_resource_conforms():
    validate_job = schema_validator("Job").validate
    validate_job(job_resource(job()))
    validate_job(job_resource(job(status="running", started_at=1764081046.0, bytes_done=1024,
                                  attempts=1, tag="nightly", metadata={"batch": 7},
                                  webhook_url="https://example.com/hook")))
    validate_job(job_resource(job(
        status="succeeded", started_at=1764081046.0, finished_at=1764081047.0, attempts=1,
        result={"size_bytes": 10, "content_type": "text/csv; charset=utf-8",
                "expires_at": "2026-11-26T14:30:47.000Z", "record_path": "orders/order",
                "records": 3},
        webhook_url="https://example.com/hook",
        webhook={"status": "delivered", "attempts": 1, "last_status_code": 204})))
    assert set(job_resource(job())) == set(SCHEMAS["Job"]["properties"]) == set(
        SCHEMAS["Job"]["required"])


def test_a_failed_jobs_error_has_the_shape_of_an_http_error():
    """The worker records ServiceError.to_record() (worker/runner.py, jobs/lifecycle.py)."""
    failure = ServiceError.from_conversion(ConversionError(
        "XML_PARSE_ERROR", "Opening and ending tag mismatch", line=3, column=19))
    failed = job(status="failed", started_at=1764081046.0, finished_at=1764081047.0,
                 attempts=1, error=failure.to_record())
    schema_validator("Job").validate(job_resource(failed))


def test_the_list_and_error_envelopes_conform():
    schema_validator("JobList").validate({"jobs": [job_resource(job())], "next": None})
    schema_validator("Error409").validate({"error": {
        "code": "JOB_NOT_FINISHED", "message": "m", "details": {"status": "queued"}}})
    with pytest.raises(jsonschema.ValidationError):
        schema_validator("Error409").validate({"error": {
            "code": "JOB_EXPIRED", "message": "m", "details": {"status": "queued"}}})


# -- served


def test_openapi_json_is_the_document(app):
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == DOC


def test_the_documented_docs_assets_are_those_served():
    asset = DOC["paths"]["/docs/{asset}"]["get"]["parameters"][0]
    assert asset["schema"]["enum"] == list(contract.ASSET_TYPES)
    content = DOC["paths"]["/docs/{asset}"]["get"]["responses"]["200"]["content"]
    assert set(content) == set(contract.ASSET_TYPES.values())


def test_docs_is_swagger_ui_from_this_origin(app):
    client = app.test_client()
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "default-src 'none'" in csp
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) == 4 and all(url.startswith("docs/") for url in assets)
    assert "<script>" not in html  # no inline script
    for url in assets:
        asset = client.get("/" + url)
        assert asset.status_code == 200, url
        assert asset.headers["Cache-Control"] == IMMUTABLE
        assert len(asset.get_data()) > 0
    bundle = client.get("/docs/swagger-ui-bundle.js").get_data(as_text=True)
    assert "SwaggerUIBundle" in bundle and "http://" not in bundle.split("\n", 1)[0]
    assert '"openapi.json"' in client.get("/docs/docs.js").get_data(as_text=True)
    missing = client.get("/docs/../openapi.yaml")
    assert missing.status_code == 404
    assert client.get("/docs/index.html").status_code == 404
