"""JSON Lines: each record's xmltodict value on its own line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, BinaryIO

from .render import json_bytes


def write_jsonl(records: Iterable[Any], dest: BinaryIO) -> int:
    write = dest.write
    count = 0
    for record in records:
        write(json_bytes(record) + b"\n")
        count += 1
    return count
