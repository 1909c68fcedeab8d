"""The HTTP contract as a document: api/openapi.yaml, served as JSON and as a page.

    GET /openapi.json        the OpenAPI 3.1 document (THE description of the HTTP contract)
    GET /docs                the document as a page: Swagger UI, served from the
                             swagger-ui-bundle-v2 package (no other origin: works offline)
    GET /docs/<asset>        the page's script, style sheet and icon, nothing else

api/openapi.yaml is written by hand beside the code it describes, except the conversion options,
which are optionspec's (their one vocabulary) and must not be copied. They are filled in when the
document is loaded, once, as the app starts (a broken document stops the app there, not at the
first request):

- `components.schemas.ConversionOptions` (a job's `options`): one property per option, with its
  description, type, allowed values, limits and default;
- an operation marked `x-conversion-options: true` gets one query parameter per option, and a
  form schema so marked one field per option, each as it is written in a request (text: a list
  of names is comma-separated, and "" means the default).

tests/unit/test_openapi_document.py checks each option's documented constraints against
parse_options(). This blueprint is open (api/auth.py, OPEN_BLUEPRINTS) and never touches Redis.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

import yaml
from flask import Blueprint, Response, current_app
from flask.blueprints import BlueprintSetupState

from optionspec import OPTIONS, Option

from .assets import Asset, asset_response, assets, html_response

bp = Blueprint("contract", __name__)

DOCUMENT = "openapi.yaml"
MARKER = "x-conversion-options"
EXTENSION_KEY = "xmlconv.openapi"  # app.extensions: the document, serialized once

# -- the document

_JSON_TYPES = {"choice": "string", "text": "string", "names": "array", "bool": "boolean",
               "int": "integer"}


def option_schema(option: Option) -> dict[str, Any]:
    """An option's JSON Schema as a job's `options` holds it (validated, normalized)."""
    schema: dict[str, Any] = {"description": option.description,
                              "type": _JSON_TYPES[option.kind]}
    if option.kind == "choice":
        schema["enum"] = list(option.choices)
    if option.kind == "text":
        if option.min_length:
            schema["minLength"] = option.min_length
        schema["maxLength"] = option.max_length
        if option.pattern:
            schema["pattern"] = option.pattern
    if option.kind == "names":
        schema.update(items={"type": "string"}, maxItems=option.max_items)
    if option.kind == "int":
        schema.update(minimum=option.low, maximum=option.high)
    if option.nullable:
        schema["type"] = [schema["type"], "null"]
    schema["default"] = list(option.default) if option.kind == "names" else option.default
    return schema


def wire_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An option's schema as a request writes it (a query parameter or a form field)."""
    wire = {k: v for k, v in schema.items() if k != "description"}
    kind = wire["type"]
    if isinstance(kind, list):  # absent (or "") means the default, null
        wire["type"] = next(t for t in kind if t != "null")
        wire.pop("default", None)
    if wire["type"] == "array":  # names separated by commas, in one value
        wire = {"type": "string"}
        if schema.get("default") == []:
            wire["default"] = ""
    return wire


def _option_parameters(options: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": name, "in": "query",
             "description": f"{schema.get('description', '')} (Also a form field.)".strip(),
             "schema": wire_schema(schema)}
            for name, schema in options.items()]


def _form_fields(options: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: {**wire_schema(schema), "description": schema.get("description", "")}
            for name, schema in options.items()}


def raw_document() -> dict[str, Any]:
    """api/openapi.yaml as written."""
    return yaml.safe_load((resources.files(__package__) / DOCUMENT).read_text("utf-8"))


def build_document(raw: dict[str, Any]) -> dict[str, Any]:
    """The document as served: `raw` with the conversion options filled in from optionspec."""
    document = copy.deepcopy(raw)
    schemas = document["components"]["schemas"]
    conversion = schemas["ConversionOptions"]
    options = {option.name: option_schema(option) for option in OPTIONS}
    conversion["properties"] = options
    conversion.pop("x-generated-from", None)
    for schema in schemas.values():
        if schema.pop(MARKER, False):
            schema["properties"] = {**schema.get("properties", {}), **_form_fields(options)}
    for path in document["paths"].values():
        for operation in path.values():
            if isinstance(operation, dict) and operation.pop(MARKER, False):
                operation["parameters"] = [*operation.get("parameters", []),
                                           *_option_parameters(options)]
    return document


@cache
def document() -> dict[str, Any]:
    """The served document (built once per process)."""
    return build_document(raw_document())


def _load(state: BlueprintSetupState) -> None:
    """Build the document as the app starts: a broken one stops the app now."""
    state.app.extensions[EXTENSION_KEY] = json.dumps(document(), ensure_ascii=False).encode()


bp.record_once(_load)


@bp.get("/openapi.json")
def openapi_json() -> Response:
    response = Response(current_app.extensions[EXTENSION_KEY], mimetype="application/json")
    response.headers["Cache-Control"] = "no-cache"
    return response


# -- the page (Swagger UI)

# Its own script, with the one thing the bundle needs to know: where the document is. Relative
# URLs throughout, so that the page also works behind a path prefix.
DOCS_SCRIPT = b"""\
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  validatorUrl: null,
});
"""
DOCS_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>its-convert-xml: the HTTP API</title>
<link rel="icon" type="image/png" href="{favicon}">
<link rel="stylesheet" href="{css}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{bundle}"></script>
<script src="{script}"></script>
</body>
</html>
"""
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "docs.js": "text/javascript; charset=utf-8",
}
# Swagger UI sets style attributes and shows inline (data:) images; everything else is ours.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@cache
def _assets() -> dict[str, Asset]:
    from swagger_ui_bundle import swagger_ui_path  # swagger-ui-bundle-v2: Swagger UI 5's files

    return assets({name: (DOCS_SCRIPT if name == "docs.js" else
                          (swagger_ui_path / name).read_bytes(), content_type)
                   for name, content_type in ASSET_TYPES.items()})


def _asset_url(name: str) -> str:
    return f"docs/{name}?v={_assets()[name].version}"  # relative to /docs


@bp.get("/docs")
def docs() -> Response:
    html = DOCS_PAGE.format(favicon=_asset_url("favicon-32x32.png"),
                            css=_asset_url("swagger-ui.css"),
                            bundle=_asset_url("swagger-ui-bundle.js"),
                            script=_asset_url("docs.js"))
    return html_response(html, SECURITY_HEADERS)


@bp.get("/docs/<asset>")
def docs_asset(asset: str) -> Response:
    return asset_response(asset, _assets().get(asset), SECURITY_HEADERS)
