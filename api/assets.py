"""Serving the API's own web files (the page, the contract's docs): versioned URLs cached for a
year, HTML never cached, and security headers on both. One place, for every blueprint that
serves files."""

from __future__ import annotations

import hashlib

from flask import Response, request

IMMUTABLE = "public, max-age=31536000, immutable"


def versions(files: dict[str, bytes]) -> dict[str, str]:
    """Each file's version: the start of its sha256, put in its URL as `?v=`."""
    return {name: hashlib.sha256(data).hexdigest()[:16] for name, data in files.items()}


def html_response(html: str, security_headers: dict[str, str]) -> Response:
    """A page naming the current asset versions: always revalidated."""
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    response.headers.update(security_headers)
    return response


def asset_response(data: bytes, content_type: str, version: str,
                   security_headers: dict[str, str]) -> Response:
    """A file: immutable for a year when asked for by its current version, else revalidated
    against its ETag (304 when unchanged)."""
    response = Response(data, content_type=content_type)
    response.headers["Cache-Control"] = IMMUTABLE if request.args.get("v") == version else (
        "no-cache")
    response.headers.update(security_headers)
    response.set_etag(version)
    return response.make_conditional(request)
