"""convert(): one entry point for every format."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

from .limits import Limits
from .options import Options, parse_format, parse_options
from .output import BoundedOutput
from .parsing import feed_all, make_engine
from .source import CHUNK_SIZE, ProgressCallback, Source


@dataclass(frozen=True)
class ConversionResult:
    format: str
    record_path: str | None = None  # jsonl and csv: the record element used
    records: int | None = None  # jsonl and csv: how many records were written
    bytes_in: int = 0


@contextmanager
def _conversion_runtime(max_depth: int):
    """Values are acyclic, so the cyclic GC only costs time while millions of short-lived
    dicts are made; serializers recurse once per level of a value."""
    limit = sys.getrecursionlimit()
    # A value nests up to twice per element (a map, and a list of repeats).
    sys.setrecursionlimit(max(limit, 2 * max_depth + 500))
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)
        if gc_was_enabled:
            gc.enable()


def _write_by_engine(src: Source, dest: BinaryIO, format: str, options: Options,
                     limits: Limits) -> None:
    """json, yaml: the engine writes the bytes itself, from the parse events
    (converter/_jsonout.pxi); document.py's writers are the references they are tested with."""
    engine = make_engine(format, options, limits)
    engine.set_output(dest.write)
    for _ in feed_all(engine, src, options.max_depth):
        pass


def convert(
    source: str | os.PathLike | BinaryIO,
    dest: BinaryIO,
    format: str = "json",
    options: Mapping[str, Any] | Options | None = None,
    progress: ProgressCallback | None = None,
    *,
    chunk_size: int = CHUNK_SIZE,
    limits: Limits | None = None,
) -> ConversionResult:
    """Convert the XML in `source` (a path or a binary stream) into `dest`.

    Raises ConversionError; on error `dest` holds a partial result that callers
    must discard. If `progress(bytes_done, bytes_total)` raises, conversion stops
    with that exception. `limits` (default `Limits()`) bounds what the document may make
    the conversion cost: passing one raises ConversionError with its code.
    """
    format = parse_format(format)
    options = parse_options(options)
    limits = Limits() if limits is None else limits
    if limits.max_output_bytes is not None:
        dest = BoundedOutput(dest, limits.max_output_bytes)
    src = Source(source, progress, chunk_size)
    with _conversion_runtime(options.max_depth):
        if format == "json":
            if options.indent:
                # The engine writes compact JSON; the C Reindenter lays it out as it comes.
                from ._accel import Reindenter

                with Reindenter(dest, options.indent) as pretty:
                    _write_by_engine(src, pretty, format, options, limits)
            else:
                _write_by_engine(src, dest, format, options, limits)
            return ConversionResult(format, bytes_in=src.bytes_done)
        if format == "yaml":
            _write_by_engine(src, dest, format, options, limits)
            return ConversionResult(format, bytes_in=src.bytes_done)
        if format in ("jsonl", "csv"):
            from .records import write_records

            path, count = write_records(src, dest, format, options, limits)
            return ConversionResult(format, path, count, src.bytes_done)
        from .text import write_text

        write_text(src, dest, options, limits)
        return ConversionResult(format, bytes_in=src.bytes_done)
