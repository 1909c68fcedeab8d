"""Who is asking: `Authorization: Bearer <API key>` on every /jobs and /convert route.

AUTH_MODE=api_key: a missing, malformed, unknown or revoked key is refused with 401
UNAUTHENTICATED and `WWW-Authenticate: Bearer`, before anything is read from the body.
AUTH_MODE=none (development's default): every request is the one anonymous client, with the
default limits. Health routes are always open.

A key's secret is checked against its record as this process last read it, for up to a minute
(jobs/api_keys.py `verify`: no Redis read for a key in use); that the key still exists is
checked on every request by the rate limiter's script (api/limits.py), in the round trip that
counts the request, so a revoked key is refused on its next request all the same.
"""

from __future__ import annotations

from flask import Flask, g, request

from common import errors
from common.errors import ServiceError
from jobs import Tenant

from .services import services

OPEN_BLUEPRINTS = ("health", "page", "contract")  # the page is HTML: its key is typed into it


def _refusal(message: str) -> ServiceError:
    # Connection: close — the body was not read, so the connection cannot carry another request.
    return ServiceError(errors.UNAUTHENTICATED, message, status=401,
                        headers={"WWW-Authenticate": 'Bearer realm="xmlconv"',
                                 "Connection": "close"})


INVALID_KEY = "this API key is not valid (unknown, malformed or revoked)"


def refuse_revoked() -> ServiceError:
    """The answer to a key whose record is gone (revoked after its verification was
    remembered): forget it in this process too, and refuse the request like an unknown key."""
    tenant = g.get("tenant")
    if tenant is not None:
        services().api_keys.forget(tenant.id)
    g.pop("tenant", None)  # a refused request has no client: no RateLimit-* headers
    return _refusal(INVALID_KEY)


def anonymous(requests_per_minute: int, max_active_jobs: int) -> Tenant:
    return Tenant("", "anonymous", requests_per_minute, max_active_jobs)


def authenticate() -> None:
    if request.endpoint is None or request.blueprint in OPEN_BLUEPRINTS:
        return  # unknown routes answer 404, health is open
    svc = services()
    settings = svc.settings
    if settings.auth_mode == "none":
        g.tenant = anonymous(settings.rate_limit_per_minute, settings.max_active_jobs)
        return
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _refusal("send an API key: Authorization: Bearer <key>")
    tenant = svc.api_keys.verify(token.strip())
    if tenant is None:
        raise _refusal(INVALID_KEY)
    g.tenant = tenant


def current_tenant() -> Tenant:
    return g.tenant


def register_auth(app: Flask) -> None:
    app.before_request(authenticate)
