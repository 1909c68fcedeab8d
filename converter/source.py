"""Reading the input: a path or a binary stream, in chunks, reporting progress."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import BinaryIO

from .errors import EMPTY_INPUT, NOT_XML, ConversionError

# libxml2 gets the document in pieces of this size; progress is reported after each
# piece, so a progress callback hears from us at least every CHUNK_SIZE bytes.
CHUNK_SIZE = 512 * 1024

ProgressCallback = Callable[[int, int], None]

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_WHITESPACE = b" \t\r\n"


def _total_size(stream: BinaryIO) -> int:
    """Bytes in the stream when it is a seekable file, else 0 (unknown)."""
    try:
        return os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        pass
    try:
        here = stream.tell()
        end = stream.seek(0, os.SEEK_END)
        stream.seek(here)
        return end - here
    except (AttributeError, OSError, ValueError):
        return 0


def sniff(first: bytes) -> None:
    """Refuse empty input and input that plainly is not XML, before libxml2 sees it."""
    if not first:
        raise ConversionError(EMPTY_INPUT, "the input is empty")
    if first.startswith(_UTF16_BOMS) or first[:2] in (b"<\x00", b"\x00<"):
        return  # UTF-16: libxml2 decodes it and judges it
    body = first[3:] if first.startswith(_UTF8_BOM) else first
    stripped = body.lstrip(_WHITESPACE)
    if not stripped:
        raise ConversionError(EMPTY_INPUT, "the input contains only whitespace")
    if not stripped.startswith(b"<"):
        raise ConversionError(
            NOT_XML, "the input is not XML: it does not start with '<'", line=1, column=1
        )


class Source:
    """One pass over the input, as chunks, with progress reported after each chunk.

    A progress callback that raises stops the pass: that is how a caller cancels.
    """

    def __init__(
        self,
        source: str | os.PathLike | BinaryIO,
        progress: ProgressCallback | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self._source = source
        self._progress = progress
        self._chunk_size = chunk_size
        self.bytes_done = 0
        self.bytes_total = 0

    def chunks(self) -> Iterator[bytes]:
        if isinstance(self._source, (str, os.PathLike)):
            with open(self._source, "rb") as stream:
                yield from self._read(stream)
        else:
            yield from self._read(self._source)

    def _read(self, stream: BinaryIO) -> Iterator[bytes]:
        self.bytes_total = _total_size(stream)
        first = True
        while True:
            chunk = stream.read(self._chunk_size)
            if first:
                # Whitespace-only chunks are joined so that sniffing sees real content.
                while chunk and not chunk.strip(_WHITESPACE) and len(chunk) < 1 << 20:
                    more = stream.read(self._chunk_size)
                    if not more:
                        break
                    chunk += more
                sniff(chunk)
                first = False
            if not chunk:
                return
            self.bytes_done += len(chunk)
            if self._progress is not None:
                self._progress(self.bytes_done, max(self.bytes_total, self.bytes_done))
            yield chunk
