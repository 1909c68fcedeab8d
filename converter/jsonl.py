"""JSON Lines: each record's xmltodict value on its own line."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any, BinaryIO

import orjson

from .render import json_bytes

_LINE = partial(orjson.dumps, option=orjson.OPT_APPEND_NEWLINE)


def write_jsonl(batches: Iterable[list[Any]], dest: BinaryIO) -> int:
    """`batches`: lists of records, as the engine completes them."""
    count = 0
    for batch in batches:
        if batch:
            try:
                dest.write(b"".join(map(_LINE, batch)))
            except orjson.JSONEncodeError:  # nested deeper than orjson writes
                dest.write(b"".join([json_bytes(record) + b"\n" for record in batch]))
            count += len(batch)
    return count
