"""CSV: one row per record, its leaf values flattened to dotted column names.

Columns are paths relative to the record: `@id`, `customer.name`, `price.#text`,
`price.@currency`. A child that repeats in any record is numbered in every record
(`items.item.0.@sku`, `items.item.1.@sku`, up to the most seen), so a column always
means the same thing. An element that carries plain text in one record and
attributes in another puts the text in `<path>.#text` in both. Columns come in
first-seen order. The header needs every record's shape, so each record's cells are
spooled to a temporary file first, as bytes tagged with the path they came from, and
written as rows on a second pass over that file (converter/_emit.pyx: Rows, csv_rows).
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Iterable
from typing import Any, BinaryIO

from ._emit import Rows, Shape, csv_header, csv_rows

_LENGTH = struct.Struct("<Q")


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


def write_csv(batches: Iterable[list[Any]], dest: BinaryIO, text_key: str) -> int:
    """`batches`: lists of records, as the engine completes them."""
    rows = Rows()
    count = 0
    with tempfile.TemporaryFile() as spool:
        for batch in batches:
            data = rows.cells(batch)  # each record's cells, as bytes
            spool.write(_LENGTH.pack(len(data)) + data)
            count += len(batch)
        names = list(dict.fromkeys(columns(rows.shape, (), text_key)))
        positions = rows.positions(names, text_key)
        if names:
            dest.write(csv_header([".".join(column) for column in names]))
        spool.seek(0)
        while header := spool.read(_LENGTH.size):
            (size,) = _LENGTH.unpack(header)
            dest.write(csv_rows(spool.read(size), positions, len(names)))
    return count
