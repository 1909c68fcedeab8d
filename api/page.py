"""The web page for people: pick or drop an XML file, a format and options, watch the upload and
the conversion, download the result, see one's recent jobs.

    GET /               the page (api/static/index.html, a Jinja template rendered here)
    GET /static/<name>  its script, style sheet and icon (api/static/), nothing else

Plain HTML, CSS and JavaScript: no build step, nothing from another origin, no inline script
(the page's Content-Security-Policy forbids it). The one other origin it talks to is the object
store's, for a direct upload of a large file (POST /uploads; then `connect-src` names it). The
page talks to the HTTP API like any other client (docs/api.md), with the API key a person types
in when AUTH_MODE=api_key; so this blueprint is open (api/auth.py, OPEN_BLUEPRINTS) and never
touches Redis.

The route embeds what the script needs to know: whether keys are on, how long POST /jobs may
`wait`, from what size a file goes straight into the object store (0: storage offers no direct
uploads), and the option form, generated from optionspec (each option's label, description,
default and limits) so that a new option shows up here without editing the page. Assets are
cache-busted: the page links `/static/app.js?v=<hash of its bytes>`, served as immutable for a
year; without the current `v`, `no-cache` + ETag.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import jinja2
from flask import Blueprint, Response

from converter import FORMATS
from optionspec import OPTIONS, plain

from .assets import Asset, asset_response, assets, html_response
from .services import services

bp = Blueprint("page", __name__)

# Everything the page loads comes from this origin; no inline script or style, no frames. The
# page itself may also PUT a direct upload's parts to the object store (`connect-src`, below).
CONNECT_SRC = "connect-src 'self'"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    f"{CONNECT_SRC}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
ASSET_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
PAGE_WAIT_SECONDS = 2  # POST /jobs?wait=…: a small file's job is done when the upload answers
# A file at least this large goes straight into the object store when storage offers direct
# uploads (POST /uploads); a smaller one is one request through the API, as good.
PAGE_DIRECT_MIN_BYTES = 16 * 1024 * 1024

FORMAT_LABELS = {"json": "JSON", "jsonl": "JSON Lines", "csv": "CSV", "yaml": "YAML",
                 "text": "Plain text"}
# Shown beside the format; every other option is under the "Options" disclosure.
MAIN_OPTIONS = ("record_path", "namespaces")
ESCAPES_HINT = r"(\n is a newline, \t a tab.)"


@dataclass(frozen=True)
class FormField:
    """One conversion option as the page's form shows it; `default` is the control's text."""

    name: str
    label: str
    hint: str
    kind: str  # choice | bool | int | text (a list of names is written as text)
    default: str
    choices: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None
    escaped: bool = False  # the text is written with \n and \t escapes


def _as_text(value: object) -> tuple[str, bool]:
    if value is None:
        return "", False
    if isinstance(value, bool):
        return ("true" if value else "false"), False
    if isinstance(value, tuple):
        return ",".join(value), False
    text = str(value)
    escaped = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    return escaped, escaped != text


def option_fields() -> list[FormField]:
    """Every conversion option (optionspec.OPTIONS), in its order, as a form control."""
    form = []
    for option in OPTIONS:
        text, escaped = _as_text(option.default)
        hint = plain(option.description) + (" " + ESCAPES_HINT if escaped else "")
        kind = "text" if option.kind == "names" else option.kind
        form.append(FormField(option.name, option.label, hint, kind, text, option.choices,
                              option.low, option.high, escaped))
    return form


@cache
def _assets() -> dict[str, Asset]:
    folder = resources.files(__package__) / "static"
    return assets({item.name: (item.read_bytes(), ASSET_TYPES[suffix])
                   for item in folder.iterdir()
                   if item.is_file() and (suffix := "." + item.name.rsplit(".", 1)[-1])
                   in ASSET_TYPES})


@cache
def _template() -> jinja2.Template:
    source = (resources.files(__package__) / "static" / "index.html").read_text("utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    return env.from_string(source)


def asset_url(name: str) -> str:
    return f"/static/{name}?v={_assets()[name].version}"


def page_headers(store_origin: str | None) -> dict[str, str]:
    """The page's headers: with direct uploads, its script may also reach the object store."""
    if store_origin is None:
        return SECURITY_HEADERS
    policy = CONTENT_SECURITY_POLICY.replace(CONNECT_SRC, f"{CONNECT_SRC} {store_origin}")
    return {**SECURITY_HEADERS, "Content-Security-Policy": policy}


@bp.get("/")
def page() -> Response:
    svc = services()
    settings = svc.settings
    store_origin = svc.lifecycle.direct_upload_origin()
    form = option_fields()
    html = _template().render(
        auth_mode=settings.auth_mode,
        wait_seconds=min(PAGE_WAIT_SECONDS, settings.max_wait_seconds),
        direct_min_bytes=PAGE_DIRECT_MIN_BYTES if store_origin else 0,
        formats=[(name, FORMAT_LABELS.get(name, name)) for name in FORMATS],
        main_fields=[f for name in MAIN_OPTIONS for f in form if f.name == name],
        more_fields=[f for f in form if f.name not in MAIN_OPTIONS],
        asset=asset_url,
    )
    return html_response(html, page_headers(store_origin))  # names the assets and auth mode


@bp.get("/static/<name>")
def asset(name: str) -> Response:
    return asset_response(name, _assets().get(name), SECURITY_HEADERS)
