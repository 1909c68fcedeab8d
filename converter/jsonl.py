"""JSON Lines: each record's xmltodict value on its own line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, BinaryIO

from ._emit import json_lines
from .render import json_bytes


def write_jsonl(batches: Iterable[list[Any]], dest: BinaryIO) -> int:
    """`batches`: lists of records, as the engine completes them."""
    count = 0
    for batch in batches:
        if batch:
            # One compact array for the chunk's records, its top-level commas made newlines.
            dest.write(json_lines(json_bytes(batch)))
            count += len(batch)
    return count
