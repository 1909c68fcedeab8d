"""The HTTP contract as a document: api/openapi.yaml, served as JSON and as a page.

    GET /openapi.json        the OpenAPI 3.1 document (THE description of the HTTP contract)
    GET /docs                the document as a page: Swagger UI, served from the
                             swagger-ui-bundle-v2 package (no other origin: works offline)
    GET /docs/<asset>        the page's script, style sheet and icon, nothing else

api/openapi.yaml is written by hand beside the code it describes, except what the code alone
decides and must not be copied: every conversion option's type, allowed values and default
(converter/options.py). Those are filled in when the document is loaded, once, as the app starts
(a broken document stops the app there, not at the first request):

- `components.schemas.ConversionOptions` (a job's `options`): one property per field of
  converter.options.Options, with the YAML's prose and the code's type and constraints;
- an operation marked `x-conversion-options: true` gets one query parameter per option, and a
  form schema so marked one field per option, each as it is written in a request (text: a list
  of names is comma-separated, and "" means the default).

The constraints that converter/options.py spells inside its parsing code (ranges, lengths) are
repeated in OPTION_RULES below; tests/unit/test_openapi_document.py checks each against
parse_options(), so that they cannot drift either. This blueprint is open (api/auth.py,
OPEN_BLUEPRINTS) and never touches Redis.
"""

from __future__ import annotations

import copy
import json
import types
import typing
from dataclasses import MISSING, fields
from functools import cache
from importlib import resources
from typing import Any

import yaml
from flask import Blueprint, Response, current_app
from flask.blueprints import BlueprintSetupState

from common import errors
from common.errors import ServiceError
from converter.options import MAX_DEPTH_CEILING, NAMESPACE_MODES, TYPE_MODES, Options

from .assets import asset_response, html_response, versions

bp = Blueprint("contract", __name__)

DOCUMENT = "openapi.yaml"
MARKER = "x-conversion-options"
EXTENSION_KEY = "xmlconv.openapi"  # app.extensions: the document, serialized once

# What parse_options() accepts, beyond each field's type (checked by the unit tests).
MAX_TEXT = 64  # every text option
MAX_NAMES = 256  # force_list
OPTION_RULES: dict[str, dict[str, Any]] = {
    "namespaces": {"enum": list(NAMESPACE_MODES)},
    "types": {"enum": list(TYPE_MODES)},
    "attr_prefix": {"maxLength": MAX_TEXT},
    "text_key": {"minLength": 1, "maxLength": MAX_TEXT},
    "separator": {"minLength": 1, "maxLength": MAX_TEXT},
    # Python's \s (the code's) also matches \x1c-\x1f and \x85, which JSON Schema's does not.
    "record_path": {"minLength": 1, "maxLength": MAX_TEXT,
                    "pattern": r"^[^/\s\x1c-\x1f\x85]+(/[^/\s\x1c-\x1f\x85]+)*$"},
    "force_list": {"maxItems": MAX_NAMES},
    "indent": {"minimum": 0, "maximum": 8},
    "max_depth": {"minimum": 1, "maximum": MAX_DEPTH_CEILING},
}

# -- the document


def _json_type(hint: Any) -> dict[str, Any]:
    """The JSON Schema of a field's type hint (str, bool, int, tuple[str, ...], X | None)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        schema = _json_type(inner)
        schema["type"] = [schema["type"], "null"]
        return schema
    if typing.get_origin(hint) is tuple:
        return {"type": "array", "items": {"type": "string"}}
    names = {str: "string", bool: "boolean", int: "integer"}
    if hint not in names:
        raise TypeError(f"no JSON type for the option type {hint!r}")
    return {"type": names[hint]}


def _default(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def option_schemas(descriptions: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each option's schema as a job's `options` holds it (validated, normalized), in the order of
    converter.options.Options, with the descriptions written in the YAML."""
    hints = typing.get_type_hints(Options)
    schemas: dict[str, dict[str, Any]] = {}
    for option in fields(Options):
        schema: dict[str, Any] = {}
        description = ((descriptions.get(option.name) or {}).get("description") or "").strip()
        if description:
            schema["description"] = description
        schema.update(_json_type(hints[option.name]))
        schema.update(copy.deepcopy(OPTION_RULES.get(option.name, {})))
        if option.default is not MISSING:
            schema["default"] = _default(option.default)
        schemas[option.name] = schema
    return schemas


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
    """The document as served: `raw` with the conversion options filled in from the code."""
    document = copy.deepcopy(raw)
    schemas = document["components"]["schemas"]
    conversion = schemas["ConversionOptions"]
    options = option_schemas(conversion.get("properties") or {})
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
def _assets() -> dict[str, bytes]:
    from swagger_ui_bundle import swagger_ui_path  # swagger-ui-bundle-v2: Swagger UI 5's files

    found = {name: (swagger_ui_path / name).read_bytes()
             for name in ASSET_TYPES if name != "docs.js"}
    found["docs.js"] = DOCS_SCRIPT
    return found


@cache
def _versions() -> dict[str, str]:
    return versions(_assets())


def _asset_url(name: str) -> str:
    return f"docs/{name}?v={_versions()[name]}"  # relative to /docs


@bp.get("/docs")
def docs() -> Response:
    html = DOCS_PAGE.format(favicon=_asset_url("favicon-32x32.png"),
                            css=_asset_url("swagger-ui.css"),
                            bundle=_asset_url("swagger-ui-bundle.js"),
                            script=_asset_url("docs.js"))
    return html_response(html, SECURITY_HEADERS)


@bp.get("/docs/<asset>")
def docs_asset(asset: str) -> Response:
    data = _assets().get(asset)
    if data is None:
        raise ServiceError(errors.NOT_FOUND, f"no such file: {asset}", status=404)
    return asset_response(data, ASSET_TYPES[asset], _versions()[asset], SECURITY_HEADERS)
