"""Conversion options on their way to the API: the `xmlconv submit` flags (the same as
`xmlconv convert`'s) and their encoding as query parameters.

The names and choices are repeated here, and tests/unit/test_client.py checks them against
converter/options.py and converter/cli.py. The server validates every value (400
INVALID_OPTION names the option), before it reads the upload.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

FORMATS = ("csv", "json", "jsonl", "text", "yaml")
NAMESPACE_MODES = ("keep", "strip", "expand")
TYPE_MODES = ("string", "infer")

# The API's option names (converter.options.OPTION_NAMES).
OPTION_NAMES = ("namespaces", "attr_prefix", "text_key", "force_list", "strip_whitespace",
                "types", "indent", "record_path", "separator", "include_attributes",
                "max_depth")

# Query parameters of POST /jobs that are not conversion options.
RESERVED = ("format", "filename", "wait", "tag", "metadata", "webhook_url")


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
    values are left out (the server's default applies). A name that is not an option at
    all, or one of POST /jobs's own parameters, raises ValueError here: sent, it would
    silently mean something else."""
    params: dict[str, str] = {}
    for name, value in (options or {}).items():
        if name in RESERVED:
            raise ValueError(f"'{name}' is not a conversion option; pass it as its own argument")
        if value is None:
            continue
        params[name] = encode_value(value)
    return params


class _ForceListNames(argparse.Action):
    """--force-list a,b --force-list c → ["a", "b", "c"]: one value per use, so that
    `--force-list item orders.xml` leaves the file to the FILE argument."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        names = list(getattr(namespace, self.dest, None) or [])
        names += [name.strip() for name in str(values).split(",") if name.strip()]
        setattr(namespace, self.dest, names)


def add_option_arguments(parser: argparse.ArgumentParser) -> None:
    """The conversion flags of `xmlconv convert`, with the same names and meanings."""
    group = parser.add_argument_group("conversion options (as in xmlconv convert)")
    group.add_argument("--record-path", help="records for jsonl/csv, e.g. orders/order")
    group.add_argument("--namespaces", choices=NAMESPACE_MODES)
    group.add_argument("--attr-prefix")
    group.add_argument("--text-key")
    group.add_argument("--force-list", action=_ForceListNames, metavar="NAME[,NAME…]",
                       help="element names always made lists: comma-separated, or repeat the "
                            "flag (it never takes the FILE argument)")
    group.add_argument("--types", choices=TYPE_MODES)
    group.add_argument("--indent", type=int)
    group.add_argument("--keep-whitespace", dest="strip_whitespace", action="store_false",
                       default=None, help="keep whitespace-only and unstripped text")
    group.add_argument("--separator", help="text: between text nodes (default newline)")
    group.add_argument("--include-attributes", action="store_true", default=None,
                       help="text: include attribute values")
    group.add_argument("--max-depth", type=int)


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line (unset flags are left to the server)."""
    return {name: getattr(args, name) for name in OPTION_NAMES
            if getattr(args, name, None) is not None}
