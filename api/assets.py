"""Serving the API's own web files (the page, the contract's docs): versioned URLs cached for a
year, HTML never cached, and security headers on both. One place, for every blueprint that
serves files."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flask import Response, request

from common import errors
from common.errors import ServiceError

IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    data: bytes
    content_type: str
    version: str  # the start of its sha256, put in its URL as `?v=`


def assets(files: dict[str, tuple[bytes, str]]) -> dict[str, Asset]:
    """Each file (its bytes and content type, by name) with its version."""
    return {name: Asset(data, content_type, hashlib.sha256(data).hexdigest()[:16])
            for name, (data, content_type) in files.items()}


def html_response(html: str, security_headers: dict[str, str]) -> Response:
    """A page naming the current asset versions: always revalidated."""
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    response.headers.update(security_headers)
    return response


def asset_response(name: str, asset: Asset | None,
                   security_headers: dict[str, str]) -> Response:
    """A file: immutable for a year when asked for by its current version, else revalidated
    against its ETag (304 when unchanged); 404 when there is no such file."""
    if asset is None:
        raise ServiceError(errors.NOT_FOUND, f"no such file: {name}", status=404)
    response = Response(asset.data, content_type=asset.content_type)
    response.headers["Cache-Control"] = IMMUTABLE if request.args.get("v") == asset.version else (
        "no-cache")
    response.headers.update(security_headers)
    response.set_etag(asset.version)
    return response.make_conditional(request)
