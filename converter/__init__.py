"""its-convert-xml's conversion engine: a streaming library in C over libxml2's push parser
(converter/_accel.pyx calls the functions of the libxml2 that lxml ships; no lxml tree is
built). A plain library: it imports neither Flask, Celery nor Redis.

    from converter import convert
    convert("orders.xml", open("orders.json", "wb"), "json", {"namespaces": "strip"})

    convert(path, dest, "csv", limits=Limits(max_columns=500, max_output_bytes=10**9))

Importing this package does not import lxml: `options`, `formats`, `limits` and `errors` are
light, so that the API can validate requests without the engine. `convert` loads the
engine on first use.
"""

from __future__ import annotations

from typing import Any

from .errors import ConversionError
from .formats import FORMATS, Format
from .limits import Limits
from .options import OPTION_NAMES, Options, parse_format, parse_options

__all__ = [
    "FORMATS",
    "OPTION_NAMES",
    "ConversionError",
    "ConversionResult",
    "Format",
    "Limits",
    "Options",
    "convert",
    "parse_format",
    "parse_options",
]


def __getattr__(name: str) -> Any:
    if name in ("convert", "ConversionResult"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'converter' has no attribute {name!r}")
