"""CSV: one row per record, its leaf values flattened to dotted column names.

Columns are paths relative to the record: `@id`, `customer.name`, `price.#text`,
`price.@currency`. A child that repeats in any record is numbered in every record
(`items.item.0.@sku`, `items.item.1.@sku`, up to the most seen), so a column always
means the same thing. An element that carries plain text in one record and
attributes in another puts the text in `<path>.#text` in both. Columns come in
first-seen order. The header needs every record's shape, so each record's cells are
spooled to a temporary file first, as bytes tagged with the path they came from, and
written as rows on a second pass over that file (converter/_emit.pyx: csv_rows). The engine
writes the cells and learns the shape from the parse events (converter/_csvout.pxi); the
records as values walked by _emit.Rows are the reference it is tested against (write_csv).

The columns are bounded (Limits.max_columns, TOO_MANY_COLUMNS), counted after each piece of
input, and so are the paths tracked to find them (PATHS_PER_COLUMN per column): every row
has every column, so the output grows with records × columns. Rows are written ROWS_PER_WRITE
at a time, so that a wide row times many short records is never one buffer.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, Protocol

from ._emit import Rows, Shape, column_positions, csv_header, csv_rows
from .errors import TOO_MANY_COLUMNS, ConversionError

_LENGTH = struct.Struct("<Q")
ROWS_PER_WRITE = 256
PATHS_PER_COLUMN = 4  # a path met as a single child and as item 0 of a list share a column


def columns(shape: Shape, path: tuple[str, ...], text_key: str) -> Iterable[tuple[str, ...]]:
    """Column paths in first-seen order, numbered children grouped by index."""
    children = shape.children
    for index, (key, child) in enumerate(children.items()):
        if index == shape.text_position:
            yield (*path, text_key)
        if child.is_list:
            for number in range(child.max_items):
                yield from columns(child, (*path, key, str(number)), text_key)
        else:
            yield from columns(child, (*path, key), text_key)
    if shape.text_position is not None and shape.text_position >= len(children):
        yield (*path, text_key) if children or not path else path


def width(shape: Shape, limit: int) -> int:
    """How many columns `shape` makes, counted up to just past `limit`."""
    total = 0
    for child in shape.children.values():
        total += width(child, limit) * (child.max_items if child.is_list else 1)
        if total > limit:
            return total
    if shape.text_position is not None:
        total += 1
    return total


def _too_many(limit: int) -> ConversionError:
    return ConversionError(TOO_MANY_COLUMNS,
                           f"the records would make more than {limit} CSV columns")


class Learned(Protocol):
    """What the columns are learned into: _emit.Rows (from records as values) or the engine's
    CSV writer (converter/_csvout.pxi, from the parse events)."""

    @property
    def shape(self) -> Shape: ...
    @property
    def paths(self) -> int: ...
    @property
    def steps(self) -> list[tuple[tuple[str, int | None], ...]]: ...


def write_csv(batches: Iterable[list[Any]], dest: BinaryIO, text_key: str,
              max_columns: int) -> int:
    """The reference: `batches` are lists of records as values, as the records engine
    completes them, walked by _emit.Rows."""
    rows = Rows()

    def cells() -> Iterator[tuple[list[bytes], int]]:
        for batch in batches:
            yield [rows.cells(batch[start:start + ROWS_PER_WRITE])
                   for start in range(0, len(batch), ROWS_PER_WRITE)], len(batch)

    return write_rows(cells(), rows, dest, text_key, max_columns)


def write_rows(cells: Iterable[tuple[list[bytes], int]], learned: Learned, dest: BinaryIO,
               text_key: str, max_columns: int) -> int:
    """`cells`: the cells of each piece of input's records (chunks of ROWS_PER_WRITE records
    at most) and how many records they hold; `learned` takes in their shape as they come.
    The header, then the rows; how many rows."""
    count = 0
    with tempfile.TemporaryFile() as spool:
        for chunks, records in cells:
            for data in chunks:
                spool.write(_LENGTH.pack(len(data)) + data)
            count += records
            if records and (learned.paths > PATHS_PER_COLUMN * max_columns
                            or width(learned.shape, max_columns) > max_columns):
                raise _too_many(max_columns)
        names = list(dict.fromkeys(columns(learned.shape, (), text_key)))
        positions = column_positions(learned.shape, learned.steps, names, text_key)
        if names:
            dest.write(csv_header([".".join(column) for column in names]))
        spool.seek(0)
        while header := spool.read(_LENGTH.size):
            (size,) = _LENGTH.unpack(header)
            dest.write(csv_rows(spool.read(size), positions, len(names)))
    return count
