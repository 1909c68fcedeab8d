"""CSV: one row per record, its leaf values flattened to dotted column names.

Columns are paths relative to the record: `@id`, `customer.name`, `price.#text`,
`price.@currency`. A child that repeats in any record is numbered in every record
(`items.item.0.@sku`, `items.item.1.@sku`, up to the most seen), so a column always
means the same thing. An element that carries plain text in one record and
attributes in another puts the text in `<path>.#text` in both. Columns come in
first-seen order. The header needs every record's shape, so records are spooled to
a temporary file first and written as rows on a second pass over that file.
"""

from __future__ import annotations

import csv
import io
import pickle
import tempfile
from collections.abc import Iterable
from typing import Any, BinaryIO


class Shape:
    """What a path looked like across all records."""

    __slots__ = ("children", "is_list", "max_items", "text_position")

    def __init__(self) -> None:
        self.children: dict[str, Shape] = {}
        self.is_list = False
        self.max_items = 1
        self.text_position: int | None = None  # children seen before the first text

    def observe(self, value: Any) -> None:
        if not isinstance(value, dict):
            if self.text_position is None:
                self.text_position = len(self.children)
            return
        children = self.children
        for key, item in value.items():
            child = children.get(key)
            if child is None:
                child = children[key] = Shape()
            if isinstance(item, list):
                child.is_list = True
                if len(item) > child.max_items:
                    child.max_items = len(item)
                for element in item:
                    child.observe(element)
            else:
                child.observe(item)

    def columns(self, path: tuple[str, ...], text_key: str) -> Iterable[tuple[str, ...]]:
        for index, (key, child) in enumerate(self.children.items()):
            if index == self.text_position:
                yield (*path, text_key)
            if child.is_list:
                for number in range(child.max_items):
                    yield from child.columns((*path, key, str(number)), text_key)
            else:
                yield from child.columns((*path, key), text_key)
        if self.text_position is not None and self.text_position >= len(self.children):
            yield (*path, text_key) if self.children or not path else path


def _flatten(shape: Shape, value: Any, path: tuple[str, ...], row: dict, text_key: str) -> None:
    if not isinstance(value, dict):
        row[(*path, text_key) if shape.children or not path else path] = value
        return
    for key, item in value.items():
        child = shape.children[key]
        if child.is_list:
            items = item if isinstance(item, list) else (item,)
            for index, element in enumerate(items):
                _flatten(child, element, (*path, key, str(index)), row, text_key)
        else:
            _flatten(child, item, (*path, key), row, text_key)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value if isinstance(value, str) else str(value)


def write_csv(records: Iterable[Any], dest: BinaryIO, text_key: str) -> int:
    shape = Shape()
    count = 0
    with tempfile.TemporaryFile() as spool:
        for record in records:
            if record is not None:  # an empty record is a row of empty cells, not a column
                shape.observe(record)
            pickle.dump(record, spool, pickle.HIGHEST_PROTOCOL)
            count += 1
        columns = list(dict.fromkeys(shape.columns((), text_key)))
        text = io.TextIOWrapper(dest, encoding="utf-8", newline="", write_through=True)
        try:
            writer = csv.writer(text, lineterminator="\r\n")
            if columns:
                writer.writerow([".".join(column) for column in columns])
            spool.seek(0)
            for _ in range(count):
                row: dict = {}
                _flatten(shape, pickle.load(spool), (), row, text_key)
                writer.writerow([_cell(row.get(column)) for column in columns])
        finally:
            text.detach()  # leave dest open for the caller
    return count
