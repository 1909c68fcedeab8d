"""How values look in each whole-document format: compact JSON and block-style YAML.

A frame (see document.py) streams a map entry by entry. Repeated keys collect their
values as list items; a key seen once is written in "single" form instead. Items are
rendered in list form first, and turned into single form by swapping a fixed-length
prefix, so that a large first value can stay on disk until we know which form it needs.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# ---------------------------------------------------------------------------- JSON


class JsonRenderer:
    separator = b","

    def item_prefix(self, level: int) -> bytes:
        return b""

    def item(self, value: Any, level: int) -> bytes:
        return orjson.dumps(value)

    def map_open(self) -> bytes:
        return b"{"

    def map_close(self) -> bytes:
        return b"}"

    def list_header(self, key: str, level: int, first: bool) -> bytes:
        return (b"" if first else b",") + orjson.dumps(key) + b":["

    def list_footer(self) -> bytes:
        return b"]"

    def single_header(self, key: str, level: int, first: bool, is_map: bool) -> bytes:
        return (b"" if first else b",") + orjson.dumps(key) + b":"

    def document_open(self, key: str, as_list: bool) -> bytes:
        return b"{" + orjson.dumps(key) + (b":[" if as_list else b":")

    def document_close(self, as_list: bool) -> bytes:
        return b"]}\n" if as_list else b"}\n"

    def document(self, key: str, value: Any) -> bytes:
        return orjson.dumps({key: value}) + b"\n"


# ---------------------------------------------------------------------------- YAML

# Plain (unquoted) only when no YAML 1.1 or 1.2 resolver could read it as anything but
# this string: starts with a letter, then word characters, dots, dashes, slashes,
# colons inside words, single spaces between words.
_WORD = r"[\w.\-/]+(?::[\w.\-/]+)*"
_PLAIN = re.compile(rf"[^\W\d][\w.\-/]*(?::[\w.\-/]+)*(?: {_WORD})*\Z")
_RESERVED = frozenset(("y", "n", "yes", "no", "true", "false", "on", "off", "null"))
# Characters YAML does not allow raw in a stream, or reads as line breaks.
_NEEDS_ASCII_ESCAPES = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text:  # YAML 1.1 floats need a dot in the mantissa and a signed exponent
            mantissa, exponent = text.split("e")
            if "." not in mantissa:
                mantissa += ".0"
            if exponent[0] not in "+-":
                exponent = "+" + exponent
            text = f"{mantissa}e{exponent}"
        return text
    if _PLAIN.match(value) and value.lower() not in _RESERVED:
        return value
    if _NEEDS_ASCII_ESCAPES.search(value):
        return json.dumps(value)  # \uXXXX escapes are YAML escapes too
    return orjson.dumps(value).decode()  # a JSON string is a YAML double-quoted scalar


class YamlRenderer:
    """Block style, two-space indent, sequences not indented under their key (like PyYAML)."""

    separator = b""

    def item_prefix(self, level: int) -> bytes:
        return b"  " * level + b"- "

    def item(self, value: Any, level: int) -> bytes:
        parts: list[str] = []
        _item(parts, value, level)
        return "".join(parts).encode()

    def map_open(self) -> bytes:
        return b""

    def map_close(self) -> bytes:
        return b""

    def list_header(self, key: str, level: int, first: bool) -> bytes:
        return f"{'  ' * level}{yaml_scalar(key)}:\n".encode()

    def list_footer(self) -> bytes:
        return b""

    def single_header(self, key: str, level: int, first: bool, is_map: bool) -> bytes:
        indent = "  " * level
        if is_map:
            return f"{indent}{yaml_scalar(key)}:\n{indent}  ".encode()
        return f"{indent}{yaml_scalar(key)}: ".encode()

    def document_open(self, key: str, as_list: bool) -> bytes:
        return f"{yaml_scalar(key)}:\n".encode()

    def document_close(self, as_list: bool) -> bytes:
        return b""

    def document(self, key: str, value: Any) -> bytes:
        parts: list[str] = []
        _entries(parts, {key: value}, 0)
        return "".join(parts).encode()


def _item(parts: list[str], value: Any, level: int) -> None:
    indent = "  " * level
    if isinstance(value, dict):
        start = len(parts)
        _entries(parts, value, level + 1)
        parts[start] = f"{indent}- " + parts[start][len(indent) + 2:]
    else:
        parts.append(f"{indent}- {yaml_scalar(value)}\n")


def _entries(parts: list[str], mapping: dict, level: int) -> None:
    indent = "  " * level
    for key, value in mapping.items():
        if isinstance(value, dict):
            parts.append(f"{indent}{yaml_scalar(key)}:\n")
            _entries(parts, value, level + 1)
        elif isinstance(value, list):
            parts.append(f"{indent}{yaml_scalar(key)}:\n")
            for item in value:
                _item(parts, item, level)
        else:
            parts.append(f"{indent}{yaml_scalar(key)}: {yaml_scalar(value)}\n")
