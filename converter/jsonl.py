"""JSON Lines: each record's xmltodict value on its own line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, BinaryIO

import orjson


def write_jsonl(records: Iterable[Any], dest: BinaryIO) -> int:
    dumps = orjson.dumps
    newline = orjson.OPT_APPEND_NEWLINE
    write = dest.write
    count = 0
    for record in records:
        write(dumps(record, option=newline))
        count += 1
    return count
