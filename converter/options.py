"""Conversion options: names, defaults and validation, in one place.

Pure Python (no lxml), so that the API can validate a request's options before it
queues anything, without carrying the conversion engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import INVALID_OPTION, ConversionError
from .formats import FORMATS

NAMESPACE_MODES = ("keep", "strip", "expand")
TYPE_MODES = ("string", "infer")
MAX_DEPTH_CEILING = 2048  # libxml2's own ceiling for nesting, even with huge trees
_RECORD_PATH = re.compile(r"^[^/\s]+(/[^/\s]+)*$")


@dataclass(frozen=True)
class Options:
    """Every option the engine understands, with its default."""

    namespaces: str = "keep"
    attr_prefix: str = "@"
    text_key: str = "#text"
    force_list: tuple[str, ...] = ()
    strip_whitespace: bool = True
    types: str = "string"
    indent: int | None = None
    record_path: str | None = None
    separator: str = "\n"
    include_attributes: bool = False
    max_depth: int = 1000

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (lists, not tuples) that `parse_options` accepts back."""
        data = asdict(self)
        data["force_list"] = list(self.force_list)
        return data

    def changed(self) -> dict[str, Any]:
        """Only the options that differ from their defaults."""
        default = Options()
        return {
            name: value
            for name, value in self.to_dict().items()
            if getattr(default, name) != getattr(self, name)
        }


OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Options))


def _fail(option: str, message: str) -> ConversionError:
    return ConversionError(INVALID_OPTION, message, option=option)


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
    raise _fail(name, f"option '{name}' must be true or false, not {value!r}")


def _as_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise _fail(name, f"option '{name}' must be an integer, not {value!r}")
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if not isinstance(value, int):
        raise _fail(name, f"option '{name}' must be an integer, not {value!r}")
    if not low <= value <= high:
        raise _fail(name, f"option '{name}' must be between {low} and {high}, not {value}")
    return value


def _as_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    raise _fail(name, f"option '{name}' must be one of {', '.join(choices)}, not {value!r}")


def _as_str(name: str, value: Any, *, allow_empty: bool) -> str:
    if not isinstance(value, str):
        raise _fail(name, f"option '{name}' must be a string, not {value!r}")
    if not allow_empty and not value:
        raise _fail(name, f"option '{name}' must not be empty")
    if len(value) > 64:
        raise _fail(name, f"option '{name}' is longer than 64 characters")
    return value


def _as_names(name: str, value: Any) -> tuple[str, ...]:
    """A list of element names: a list, or one comma-separated string."""
    if isinstance(value, str):
        items: Iterable[Any] = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = [part for item in value for part in (item.split(",") if isinstance(item, str)
                                                         else [item])]
    else:
        raise _fail(name, f"option '{name}' must be a list of element names, not {value!r}")
    names = []
    for item in items:
        if not isinstance(item, str):
            raise _fail(name, f"option '{name}' must be a list of element names, not {value!r}")
        if item.strip():
            names.append(item.strip())
    if len(names) > 256:
        raise _fail(name, f"option '{name}' accepts at most 256 names")
    return tuple(dict.fromkeys(names))


def _parse_one(name: str, value: Any) -> Any:
    match name:
        case "namespaces":
            return _as_choice(name, value, NAMESPACE_MODES)
        case "types":
            return _as_choice(name, value, TYPE_MODES)
        case "attr_prefix":
            return _as_str(name, value, allow_empty=True)
        case "text_key":
            return _as_str(name, value, allow_empty=False)
        case "separator":
            return _as_str(name, value, allow_empty=False)
        case "force_list":
            return _as_names(name, value)
        case "strip_whitespace" | "include_attributes":
            return _as_bool(name, value)
        case "indent":
            if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
                return None
            return _as_int(name, value, 0, 8) or None
        case "max_depth":
            return _as_int(name, value, 1, MAX_DEPTH_CEILING)
        case "record_path":
            if value is None or value == "":
                return None
            path = _as_str(name, value, allow_empty=False).strip().strip("/")
            if not _RECORD_PATH.match(path):
                raise _fail(name, f"record_path must look like 'root/record', not {value!r}")
            return path
    raise _fail(name, f"unknown option '{name}'; known options: {', '.join(OPTION_NAMES)}")


def parse_options(raw: Mapping[str, Any] | None = None) -> Options:
    """Validate options given as native values or as strings (HTTP forms, query strings).

    Raises ConversionError(INVALID_OPTION) naming the first bad option.
    """
    if raw is None:
        return Options()
    if isinstance(raw, Options):
        return raw
    values = {name: _parse_one(name, value) for name, value in raw.items()}
    options = Options(**values)
    if options.attr_prefix == options.text_key:
        raise _fail("text_key", "options 'attr_prefix' and 'text_key' must differ")
    return options


def parse_format(value: Any) -> str:
    """Validate an output format name."""
    if isinstance(value, str) and value.strip().lower() in FORMATS:
        return value.strip().lower()
    raise ConversionError(
        INVALID_OPTION,
        f"format must be one of {', '.join(FORMATS)}, not {value!r}",
        option="format",
    )
