"""Conversion options: the engine's `Options` and their validation.

What each option is (name, kind, allowed values, limits, default) is optionspec's, the one
vocabulary; this module makes a typed value of it and checks what a caller gives against it.
Pure Python (no lxml), so that the API can validate a request's options before it queues
anything, without carrying the conversion engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, field, make_dataclass
from typing import Any

from optionspec import OPTION_NAMES, OPTIONS, Option

from .errors import INVALID_OPTION, ConversionError
from .formats import FORMATS

__all__ = ["OPTION_NAMES", "Options", "parse_format", "parse_options"]


def _to_dict(self: Any) -> dict[str, Any]:
    """JSON-ready form (lists, not tuples) that `parse_options` accepts back."""
    data = asdict(self)
    data["force_list"] = list(self.force_list)
    return data


Options = make_dataclass(
    "Options", [(o.name, o.python_type, field(default=o.default)) for o in OPTIONS], frozen=True,
    namespace={"__module__": __name__, "to_dict": _to_dict,
               "__doc__": "Every option the engine understands, with its default."})

_SPECS = {option.name: option for option in OPTIONS}
# A valid value, as the engine takes it: a path without its outer slashes; 0 spaces of indent
# is compact output, the same as none.
_TIDY: dict[str, Callable[[Any], Any]] = {"record_path": lambda path: path.strip().strip("/"),
                                          "indent": lambda spaces: spaces or None}


def _fail(option: str, message: str) -> ConversionError:
    return ConversionError(INVALID_OPTION, message, option=option)


def _as_bool(spec: Option, value: Any) -> bool:
    name = spec.name
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
    raise _fail(name, f"option '{name}' must be true or false, not {value!r}")


def _as_int(spec: Option, value: Any) -> int:
    name = spec.name
    if isinstance(value, bool):
        raise _fail(name, f"option '{name}' must be an integer, not {value!r}")
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if not isinstance(value, int):
        raise _fail(name, f"option '{name}' must be an integer, not {value!r}")
    if not spec.low <= value <= spec.high:
        raise _fail(name, f"option '{name}' must be between {spec.low} and {spec.high}, "
                          f"not {value}")
    return value


def _as_choice(spec: Option, value: Any) -> str:
    if isinstance(value, str) and value.strip().lower() in spec.choices:
        return value.strip().lower()
    raise _fail(spec.name, f"option '{spec.name}' must be one of {', '.join(spec.choices)}, "
                           f"not {value!r}")


def _as_str(spec: Option, value: Any) -> str:
    name = spec.name
    if not isinstance(value, str):
        raise _fail(name, f"option '{name}' must be a string, not {value!r}")
    if len(value) < spec.min_length:
        raise _fail(name, f"option '{name}' must not be empty")
    if len(value) > spec.max_length:
        raise _fail(name, f"option '{name}' is longer than {spec.max_length} characters")
    return value


def _as_names(spec: Option, value: Any) -> tuple[str, ...]:
    """A list of element names: a list, or one comma-separated string."""
    name = spec.name
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
    if len(names) > spec.max_items:
        raise _fail(name, f"option '{name}' accepts at most {spec.max_items} names")
    return tuple(dict.fromkeys(names))


def _absent(spec: Option, value: Any) -> bool:
    """No value: None or "", and for a number also blank or "none" (a form's empty field)."""
    return value is None or value == "" or (
        spec.kind == "int" and isinstance(value, str) and value.strip().lower() in ("", "none"))


_KINDS: dict[str, Callable[[Option, Any], Any]] = {
    "choice": _as_choice, "text": _as_str, "names": _as_names, "int": _as_int, "bool": _as_bool}


def _parse_one(name: str, value: Any) -> Any:
    spec = _SPECS.get(name)
    if spec is None:
        raise _fail(name, f"unknown option '{name}'; known options: {', '.join(OPTION_NAMES)}")
    if spec.nullable and _absent(spec, value):
        return None
    parsed = _TIDY.get(name, lambda same: same)(_KINDS[spec.kind](spec, value))
    if spec.pattern and not re.match(spec.pattern, parsed):
        raise _fail(name, f"option '{name}' must look like {spec.shape}, not {value!r}")
    return parsed


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
