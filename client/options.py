"""Conversion options on their way to the API: the `xmlconv submit` flags (those of
`xmlconv convert`, from optionspec/flags.py) and their encoding as query parameters.

The options' vocabulary is optionspec's, which needs nothing else; of the converter the client
takes only its small modules (the error codes, the exit statuses), never the engine, so it runs
where the engine is not installed. The server validates every value (400 INVALID_OPTION names
the option), before it reads the upload.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optionspec import NOT_OPTIONS

FORMATS = ("csv", "json", "jsonl", "text", "yaml")


def encode_value(value: Any) -> str:
    """One option value as the API reads it from a query string: booleans as true/false,
    lists of names comma-separated (an XML name never holds a comma), numbers as digits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)


def to_params(options: Mapping[str, Any] | None) -> dict[str, str]:
    """Options (native values, as converter.convert takes them) → query parameters. None
    values are left out (the server's default applies). One of POST /jobs's own parameters
    raises ValueError here: sent, it would silently mean something else (an unknown name is
    the server's to refuse, with INVALID_OPTION)."""
    params: dict[str, str] = {}
    for name, value in (options or {}).items():
        if name in NOT_OPTIONS:
            raise ValueError(f"'{name}' is not a conversion option; pass it as its own argument")
        if value is None:
            continue
        params[name] = encode_value(value)
    return params
