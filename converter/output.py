"""The output stream as the converter writes it: bytes counted, and a conversion whose output
passes Limits.max_output_bytes stopped (OUTPUT_TOO_LARGE) by the write that passes it."""

from __future__ import annotations

from typing import BinaryIO

from .errors import OUTPUT_TOO_LARGE, ConversionError


class BoundedOutput:
    """A write-only binary stream over `dest` that refuses to pass `limit` bytes."""

    def __init__(self, dest: BinaryIO, limit: int) -> None:
        self.dest = dest
        self.limit = limit
        self.written = 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        if self.written > self.limit:
            raise ConversionError(
                OUTPUT_TOO_LARGE,
                f"the output would be larger than the limit of {self.limit} bytes")
        return self.dest.write(data)

    def flush(self) -> None:
        self.dest.flush()
