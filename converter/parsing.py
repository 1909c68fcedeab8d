"""Parsing: the input fed to the C engine (converter/_accel.pyx) one chunk at a time.

libxml2 parses, the engine turns its callbacks into values, records or text; this module
feeds it, hands on what each chunk completed, and turns every failure into a
ConversionError with libxml2's message, line and column. The libxml2 used is lxml's own
copy (see _accel.pyx).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ._accel import PARSE_FAILED, Engine, _Problem
from .errors import (
    DEPTH_LIMIT_EXCEEDED,
    EMPTY_INPUT,
    ENCODING_ERROR,
    NOT_XML,
    XML_PARSE_ERROR,
    XML_SECURITY_VIOLATION,
    ConversionError,
)
from .limits import Limits
from .options import Options
from .source import Source
from .values import infer

_NO_ROOT_LIMIT = 16 * 1024 * 1024  # the root start tag must appear within this many bytes
# The engine is fed this much at a time: what one feed completes (values, output) is then at
# most this many bytes of input times the amplification the limits allow, not a whole chunk's.
PIECE = 64 * 1024

_CODES_BY_MESSAGE = (
    ("amplification", XML_SECURITY_VIOLATION),
    ("entity reference loop", XML_SECURITY_VIOLATION),
    ("Excessive depth", DEPTH_LIMIT_EXCEEDED),
    ("Document is empty", EMPTY_INPUT),
    ("Start tag expected", NOT_XML),
    ("not proper UTF", ENCODING_ERROR),
    ("encoding", ENCODING_ERROR),
    ("Encoding", ENCODING_ERROR),
    ("Invalid bytes in character", ENCODING_ERROR),
)


def make_engine(mode: str, options: Options, limits: Limits,
                record_path: list[str] | None = None) -> Engine:
    """An engine for one document; mode: document, records, count or text."""
    return Engine(
        mode,
        namespaces=options.namespaces,
        attr_prefix=options.attr_prefix,
        text_key=options.text_key,
        force_list=options.force_list,
        strip=options.strip_whitespace,
        infer=infer if options.types == "infer" else None,
        max_depth=options.max_depth,
        record_path=record_path,
        separator=options.separator,
        include_attributes=options.include_attributes,
        max_attributes=limits.max_attributes,
        max_attribute_defaults=limits.max_attribute_defaults,
        max_attribute_default_bytes=limits.max_attribute_default_bytes,
        max_names=limits.max_names,
        max_value_bytes=limits.max_value_bytes,
    )


def _parse_error(engine: Engine, max_depth: int) -> ConversionError:
    error = engine.error
    if error is None:
        return ConversionError(XML_PARSE_ERROR, "the document is not well-formed XML")
    _level, message, line, column = error
    # libxml2 appends ", line N, column M" to some messages; the fields carry that.
    message = message.split(", line ")[0].strip()
    code = next((c for text, c in _CODES_BY_MESSAGE if text in message), XML_PARSE_ERROR)
    if code == DEPTH_LIMIT_EXCEEDED:  # libxml2's own ceiling: say it in the user's terms
        message = f"elements are nested deeper than the limit of {max_depth} levels"
    return ConversionError(code, message, line=line or None, column=column or None)


def _feed(engine: Engine, chunk: bytes, final: bool, max_depth: int) -> Any:
    try:
        result = engine.feed(chunk, final)
    except _Problem as problem:
        code, message, line, column = problem.args
        raise ConversionError(code, message, line=line or None, column=column or None) from None
    if result is PARSE_FAILED:
        raise _parse_error(engine, max_depth)
    return result


def feed_all(engine: Engine, source: Source, max_depth: int,
             chunks: Iterable[bytes] | None = None) -> Iterator[Any]:
    """Feed the source (or `chunks`, already read from it) to the engine; yield what each
    chunk completed, the last time once the document has ended."""
    for chunk in source.chunks() if chunks is None else chunks:
        for start in range(0, len(chunk), PIECE):
            yield _feed(engine, chunk[start:start + PIECE] if len(chunk) > PIECE else chunk,
                        False, max_depth)
        if not engine.root_seen and source.bytes_done > _NO_ROOT_LIMIT:
            raise ConversionError(NOT_XML, "the input has no root element")
    if not engine.root_seen and not source.saw_content:
        raise ConversionError(EMPTY_INPUT, "the input contains only whitespace")
    yield _feed(engine, b"", True, max_depth)
    if not engine.root_seen:
        raise ConversionError(NOT_XML, "the input has no root element")
