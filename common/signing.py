"""Secrets the server derives rather than stores (imports nothing but the standard library: the
settings use it before any process has set itself up)."""

from __future__ import annotations

import base64
import hashlib
import hmac


def webhook_secret(secret_key: str, client_id: str) -> str:
    """A client's Standard Webhooks secret (`whsec_<base64>`), derived from SECRET_KEY and its
    key id ("" for everyone under AUTH_MODE=none): never stored, computed where it is used."""
    raw = hmac.new(secret_key.encode(), f"webhook:{client_id}".encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(raw).decode()
