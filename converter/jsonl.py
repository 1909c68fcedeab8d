"""JSON Lines: each record's xmltodict value on its own line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, BinaryIO

from .render import json_bytes


def write_jsonl(batches: Iterable[list[Any]], dest: BinaryIO) -> int:
    """`batches`: lists of records, as the engine completes them."""
    count = 0
    for batch in batches:
        if batch:
            dest.write(b"\n".join([json_bytes(record) for record in batch]) + b"\n")
            count += len(batch)
    return count
