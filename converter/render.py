"""How values look in each whole-document format: compact JSON and block-style YAML.

A frame (see document.py) streams a map entry by entry. Repeated keys collect their
values as list items; a key seen once is written in "single" form instead. Items are
rendered in list form first, and turned into single form by swapping a fixed-length
prefix, so that a large first value can stay on disk until we know which form it needs.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

import orjson


class Renderer(Protocol):
    """How a whole-document writer (document.py) spells maps, lists and values.

    An item is rendered in list form (`item`); a key seen once is written in single form
    by replacing the first `len(item_prefix(level))` bytes of its item with
    `single_header(...)`.
    """

    separator: bytes  # between two items of one list

    def item_prefix(self, level: int) -> bytes: ...
    def item(self, value: Any, level: int) -> bytes: ...
    def items(self, values: list, level: int) -> bytes: ...  # items joined by separator
    def map_open(self) -> bytes: ...
    def map_close(self) -> bytes: ...
    def list_header(self, key: str, level: int, first: bool) -> bytes: ...
    def list_footer(self) -> bytes: ...
    def single_header(self, key: str, level: int, first: bool, is_map: bool) -> bytes: ...
    def document_open(self, key: str, as_list: bool) -> bytes: ...
    def document_close(self, as_list: bool) -> bytes: ...
    def document(self, key: str, value: Any) -> bytes: ...

# ---------------------------------------------------------------------------- JSON


def json_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON. orjson stops at 255 levels of nesting; deeper values (up to
    max_depth elements, each a map and maybe a list) go through the standard library."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class JsonRenderer:
    separator = b","

    def item_prefix(self, level: int) -> bytes:
        return b""

    def item(self, value: Any, level: int) -> bytes:
        return json_bytes(value)

    def items(self, values: list, level: int) -> bytes:
        return json_bytes(values)[1:-1]

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
        return json_bytes({key: value}) + b"\n"


# ---------------------------------------------------------------------------- YAML

# Plain (unquoted) only when no YAML 1.1 or 1.2 resolver could read it as anything but
# this string: starts with a letter, then word characters, dots, dashes, slashes,
# colons inside words, single spaces between words; never a boolean or null word.
_WORD = r"[\w.\-/]+(?::[\w.\-/]+)*"
_PLAIN = re.compile(
    rf"(?!(?:y|n|yes|no|true|false|on|off|null)\Z)[^\W\d][\w.\-/]*(?::[\w.\-/]+)*(?: {_WORD})*\Z",
    re.IGNORECASE,
)
# Characters YAML does not allow raw in a stream, or reads as line breaks.
_NEEDS_ASCII_ESCAPES = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_KEY_CACHE_LIMIT = 10_000


def yaml_string(value: str) -> str:
    if _PLAIN.match(value):
        return value
    quoted = orjson.dumps(value).decode()  # a JSON string is a YAML double-quoted scalar
    if _NEEDS_ASCII_ESCAPES.search(quoted):
        quoted = _NEEDS_ASCII_ESCAPES.sub(_escape, quoted)
    return quoted


def _escape(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"  # all are in the BMP: no surrogate pairs


def yaml_scalar(value: Any) -> str:
    if type(value) is str:
        return yaml_string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    text = repr(value)  # a float
    if "e" in text:  # YAML 1.1 floats need a dot in the mantissa and a signed exponent
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        if exponent[0] not in "+-":
            exponent = "+" + exponent
        text = f"{mantissa}e{exponent}"
    return text


class YamlRenderer:
    """Block style, two-space indent, sequences not indented under their key (like PyYAML).

    Values are written by converter/_emit.pyx's YamlWriter, which follows `_item` and
    `_entries` below (kept as the readable statement of the layout, and tested against it).
    """

    separator = b""

    def __init__(self) -> None:
        from ._emit import YamlWriter

        self._keys: dict[str, str] = {}
        self._writer = YamlWriter(yaml_string, yaml_scalar)

    def _key(self, key: str) -> str:
        text = self._keys.get(key)
        if text is None:
            text = yaml_string(key)
            if len(self._keys) < _KEY_CACHE_LIMIT:
                self._keys[key] = text
        return text

    def item_prefix(self, level: int) -> bytes:
        return b"  " * level + b"- "

    def item(self, value: Any, level: int) -> bytes:
        return self._writer.item(value, level)

    def items(self, values: list, level: int) -> bytes:
        return self._writer.items(values, level)

    def map_open(self) -> bytes:
        return b""

    def map_close(self) -> bytes:
        return b""

    def list_header(self, key: str, level: int, first: bool) -> bytes:
        return f"{'  ' * level}{self._key(key)}:\n".encode()

    def list_footer(self) -> bytes:
        return b""

    def single_header(self, key: str, level: int, first: bool, is_map: bool) -> bytes:
        indent = "  " * level
        if is_map:
            return f"{indent}{self._key(key)}:\n{indent}  ".encode()
        return f"{indent}{self._key(key)}: ".encode()

    def document_open(self, key: str, as_list: bool) -> bytes:
        return f"{self._key(key)}:\n".encode()

    def document_close(self, as_list: bool) -> bytes:
        return b""

    def document(self, key: str, value: Any) -> bytes:
        return self._writer.entries({key: value}, 0)

    def python_item(self, value: Any, level: int) -> bytes:
        """The layout in Python (what YamlWriter does in C), for tests."""
        parts: list[str] = []
        self._item(parts, value, level)
        return "".join(parts).encode()

    def _item(self, parts: list[str], value: Any, level: int) -> None:
        indent = "  " * level
        if type(value) is dict:
            start = len(parts)
            self._entries(parts, value, level + 1)
            parts[start] = f"{indent}- " + parts[start][len(indent) + 2:]
        else:
            parts.append(f"{indent}- {yaml_scalar(value)}\n")

    def _entries(self, parts: list[str], mapping: dict, level: int) -> None:
        indent = "  " * level
        key_text = self._key
        for key, value in mapping.items():
            kind = type(value)
            if kind is str:
                parts.append(f"{indent}{key_text(key)}: {yaml_string(value)}\n")
            elif kind is dict:
                parts.append(f"{indent}{key_text(key)}:\n")
                self._entries(parts, value, level + 1)
            elif kind is list:
                parts.append(f"{indent}{key_text(key)}:\n")
                for item in value:
                    self._item(parts, item, level)
            else:
                parts.append(f"{indent}{key_text(key)}: {yaml_scalar(value)}\n")
