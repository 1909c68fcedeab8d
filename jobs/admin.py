"""Operators' command for API keys (installed as `xmlconv-admin`):

    xmlconv-admin keys create NAME [--requests-per-minute N] [--max-active-jobs N]
    xmlconv-admin keys list
    xmlconv-admin keys revoke NAME

Reads the same settings as the service (REDIS_URL, SECRET_KEY, the default limits). `create`
prints one JSON object with the key and its webhook secret: they are shown this once and stored
nowhere. `list` prints the keys without secrets; `revoke` takes effect on the key's next request.

Exits 0 when done; 1 on an error, printed on stderr as the API prints it,
`{"error": {"code": "KEY_NAME_TAKEN", "message": "…", "details": {"name": "acme"}}}`
(KEY_NOT_FOUND, QUEUE_UNAVAILABLE when Redis does not answer); 2 on bad arguments (argparse's
usage) or settings (their JSON log line).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

import redis

from common.errors import KEY_NAME_TAKEN, KEY_NOT_FOUND, QUEUE_UNAVAILABLE, ServiceError
from common.settings import Settings, settings_or_exit

from .api_keys import ApiKeys
from .connection import connect

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _name(value: str) -> str:
    if not 1 <= len(value) <= 64 or not set(value) <= _NAME_CHARS:
        raise argparse.ArgumentTypeError("1 to 64 characters of A-Z a-z 0-9 . _ -")
    return value


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError("a whole number, at least 1")
    return int(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xmlconv-admin", description="Manage API keys.")
    things = parser.add_subparsers(dest="thing", required=True)
    verbs = things.add_parser("keys", help="API keys").add_subparsers(dest="verb", required=True)
    create = verbs.add_parser("create", help="make a key (its secrets are printed once)")
    create.add_argument("name", type=_name)
    create.add_argument("--requests-per-minute", type=_positive,
                        help="default: RATE_LIMIT_PER_MINUTE")
    create.add_argument("--max-active-jobs", type=_positive, help="default: MAX_ACTIVE_JOBS")
    verbs.add_parser("list", help="the keys, without secrets")
    revoke = verbs.add_parser("revoke", help="delete a key; its next request is refused")
    revoke.add_argument("name", type=_name)
    return parser


def _run(args: argparse.Namespace, registry: ApiKeys, settings: Settings) -> None:
    if args.verb == "create":
        try:
            made = registry.create(
                args.name, args.requests_per_minute or settings.rate_limit_per_minute,
                args.max_active_jobs or settings.max_active_jobs)
        except ValueError as exc:  # the registry's one refusal: the name is taken
            raise ServiceError(KEY_NAME_TAKEN, str(exc), {"name": args.name}) from None
        print(json.dumps({**asdict(made.tenant), "api_key": made.api_key,
                          "webhook_secret": made.webhook_secret}))
    elif args.verb == "list":
        print(json.dumps(registry.list()))
    elif registry.revoke(args.name):
        print(json.dumps({"revoked": args.name}))
    else:
        raise ServiceError(KEY_NOT_FOUND, f"no key named {args.name!r}", {"name": args.name})


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = settings_or_exit("admin")
    registry = ApiKeys(connect(settings), settings.secret_key)
    try:
        _run(args, registry, settings)
    except redis.RedisError as exc:
        error = ServiceError(QUEUE_UNAVAILABLE, f"Redis is unavailable: {exc}")
    except ServiceError as exc:
        error = exc
    else:
        return 0
    print(json.dumps(error.envelope()), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
