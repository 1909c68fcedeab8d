"""API keys: who a request comes from. A *tenant* is one key's holder: its name and limits.

An API key reads `xck_<key id>_<secret>`. Redis keeps, per key id, the client's name, limits and
the sha256 of the secret — never the secret itself, which is shown once, when the key is made.
The secret has 256 random bits, so a plain hash is enough (no password stretching needed), and
the comparison is constant-time.

Each client also has a webhook secret (`whsec_…`, Standard Webhooks) to check the signatures of
the webhooks sent for its jobs. It is not stored either: it is derived from SECRET_KEY and the
key id (HMAC-SHA256), so the worker that signs a webhook can compute it again, and revoking the
key (which deletes its record) ends it too.

`verify` is `authenticate` for a server: it remembers each verified key's record in the process
for VERIFIED_SECONDS, so a key in use costs no Redis read; a key revoked meanwhile still passes
it, so its caller must check that the record exists on each request (the API does so in the
round trip that counts the request, api/limits.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass

import redis

from common.logs import utc_timestamp
from common.signing import webhook_secret

from . import keys

KEY_PREFIX = "xck"
# How long, and for how many keys, `verify` remembers a record it read (per process). A record
# never changes under its key id (a key is made or deleted, not edited), so this bounds memory
# and nothing else; revocation is the caller's check (see the module's docstring).
VERIFIED_SECONDS = 60.0
VERIFIED_MAX = 4096


@dataclass(frozen=True)
class Tenant:
    id: str  # the key id ("" for everyone under AUTH_MODE=none)
    name: str
    requests_per_minute: int
    max_active_jobs: int


@dataclass(frozen=True)
class NewKey:
    tenant: Tenant
    api_key: str
    webhook_secret: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _parse(api_key: str) -> tuple[str, str] | None:
    prefix, _, rest = api_key.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or not key_id or not secret or len(api_key) > 200:
        return None
    return key_id, secret


class ApiKeys:
    """API keys in Redis: create, list, revoke, and authenticate a request's key."""

    def __init__(self, client: redis.Redis, secret_key: str) -> None:
        self.redis = client
        self.secret_key = secret_key
        # key id -> (when read, monotonic; sha256 of the secret; the tenant)
        self._verified: OrderedDict[str, tuple[float, str, Tenant]] = OrderedDict()

    def create(self, name: str, requests_per_minute: int, max_active_jobs: int) -> NewKey:
        """A new key for `name` (names are unique). Raises ValueError if the name is taken."""
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        tenant = Tenant(key_id, name, requests_per_minute, max_active_jobs)
        record = {**asdict(tenant), "secret_sha256": _digest(secret),
                  "created_at": utc_timestamp(time.time())}
        if not self.redis.hsetnx(keys.api_key_names(), name, key_id):
            raise ValueError(f"a key named {name!r} exists; revoke it first")
        self.redis.set(keys.api_key(key_id), json.dumps(record))
        return NewKey(tenant, f"{KEY_PREFIX}_{key_id}_{secret}",
                      webhook_secret(self.secret_key, key_id))

    def list(self) -> list[dict]:
        """Every key's name, id, limits and creation time (no secret, no hash)."""
        ids = self.redis.hgetall(keys.api_key_names())
        records = self.redis.mget([keys.api_key(key_id) for key_id in ids.values()]) if ids else []
        listed = []
        for record in records:
            if record:
                data = json.loads(record)
                data.pop("secret_sha256", None)
                listed.append(data)
        return sorted(listed, key=lambda data: data["name"])

    def revoke(self, name: str) -> bool:
        """Delete the key named `name`: its next request is refused. False if there is none."""
        key_id = self.redis.hget(keys.api_key_names(), name)
        if key_id is None:
            return False
        with self.redis.pipeline() as pipe:
            pipe.delete(keys.api_key(key_id))
            pipe.hdel(keys.api_key_names(), name)
            pipe.execute()
        return True

    def authenticate(self, api_key: str) -> Tenant | None:
        """The tenant whose key this is, or None (unknown, malformed or revoked)."""
        parsed = _parse(api_key)
        if parsed is None:
            return None
        key_id, secret = parsed
        return self._read(key_id, secret, time.monotonic())

    def verify(self, api_key: str) -> Tenant | None:
        """authenticate(), with the key's record remembered in this process for up to
        VERIFIED_SECONDS: the secret is checked against the remembered digest. A key revoked
        since it was remembered still passes: check that keys.api_key(id) exists (see the
        module's docstring), and call forget(id) when it does not."""
        parsed = _parse(api_key)
        if parsed is None:
            return None
        key_id, secret = parsed
        now = time.monotonic()
        known = self._verified.get(key_id)
        if known is not None and now - known[0] < VERIFIED_SECONDS:
            return known[2] if hmac.compare_digest(known[1], _digest(secret)) else None
        return self._read(key_id, secret, now)

    def forget(self, key_id: str) -> None:
        self._verified.pop(key_id, None)

    def _read(self, key_id: str, secret: str, now: float) -> Tenant | None:
        record = self.redis.get(keys.api_key(key_id))
        if record is None:
            self.forget(key_id)
            return None
        data = json.loads(record)
        if not hmac.compare_digest(data["secret_sha256"], _digest(secret)):
            return None
        tenant = Tenant(data["id"], data["name"], int(data["requests_per_minute"]),
                        int(data["max_active_jobs"]))
        self._verified[key_id] = (now, data["secret_sha256"], tenant)
        self._verified.move_to_end(key_id)
        while len(self._verified) > VERIFIED_MAX:  # the least recently read first
            self._verified.popitem(last=False)
        return tenant

    def webhook_secret(self, tenant_id: str) -> str:
        return webhook_secret(self.secret_key, tenant_id)
