"""Record formats (jsonl, csv): one output record per repeated element.

The record element is named by `record_path` (`orders/order`: path of keys from the
root, a component matches an element's key or, with expanded namespaces, its local
name). Without it the engine picks one: the element path with the most siblings of the
same name under a single parent, judged on the first SAMPLE_BYTES of the document (ties
go to the shallower path, then the earlier one). A document without repeats is one
record. The sample is counted by a first engine and then given to the one that converts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from .errors import RECORD_NOT_FOUND, ConversionError
from .limits import Limits
from .options import Options
from .parsing import feed_all, make_engine
from .source import Source

SAMPLE_BYTES = 4 * 1024 * 1024


def pick_record_path(most: dict[tuple[str, ...], int], root_key: str) -> list[str]:
    """The most repeated element path (see module docstring); `most` maps each path to the
    most siblings it had under one parent, in the order the paths were first seen."""
    order = {path: index for index, path in enumerate(most)}
    repeated = [path for path, count in most.items() if count > 1]
    if not repeated:
        return [root_key]
    return list(max(repeated, key=lambda p: (most[p], -len(p), -order[p])))


def _sample(source: Source, options: Options, limits: Limits,
            chunks: Iterator[bytes]) -> tuple[list[str], list[bytes]]:
    """Read and count the sample from `chunks`; the record path and the chunks read."""
    counter = make_engine("count", options, limits)
    sample: list[bytes] = []
    for _ in feed_all(counter, source, options.max_depth, _kept(chunks, sample)):
        if counter.root_seen and source.bytes_done >= SAMPLE_BYTES:
            break
    return pick_record_path(counter.most_repeated, counter.root_key), sample


def _kept(chunks: Iterator[bytes], sample: list[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        sample.append(chunk)
        yield chunk


def record_values(source: Source, options: Options, limits: Limits, path: list[str],
                  chunks: Iterator[bytes] | None = None) -> Iterator[list[Any]]:
    """The records as values, a list per piece of input fed (parsing.PIECE): what the CSV
    writer's reference (tabular.write_csv) reads."""
    return feed_all(make_engine("records", options, limits, path), source, options.max_depth,
                    chunks)


def _cells(pieces: Iterator[list[bytes]], learned: Any) -> Iterator[tuple[list[bytes], int]]:
    """Each piece's chunks of cells, with how many records they completed."""
    before = 0
    for chunks in pieces:
        yield chunks, learned.records - before
        before = learned.records


def _replayed(sample: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    """The sample again, then the rest of the same pass over the source."""
    while sample:
        yield sample.pop(0)
    yield from rest


def write_records(source: Source, dest: BinaryIO, format: str,
                  options: Options, limits: Limits) -> tuple[str | None, int]:
    chunks = source.chunks()
    if options.record_path:
        path = options.record_path.split("/")
    else:
        path, sample = _sample(source, options, limits, chunks)
        chunks = _replayed(sample, chunks)
    if format == "jsonl":
        # The engine writes each record's JSON line itself (converter/_jsonout.pxi).
        engine = make_engine("jsonl", options, limits, path)
        engine.set_output(dest.write)
        for _ in feed_all(engine, source, options.max_depth, chunks):
            pass
        count = engine.records_written
    else:
        # The engine writes each record's cells and learns the columns (_csvout.pxi).
        from .tabular import ROWS_PER_WRITE, write_rows

        engine = make_engine("csv", options, limits, path)
        learned = engine.table(ROWS_PER_WRITE)
        count = write_rows(_cells(feed_all(engine, source, options.max_depth, chunks), learned),
                           learned, dest, options.text_key, limits.max_columns)
    if count == 0 and options.record_path:
        raise ConversionError(
            RECORD_NOT_FOUND, f"no element matches record_path '{options.record_path}'"
        )
    return "/".join(path), count
