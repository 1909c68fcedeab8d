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
_SNIFF_BYTES = 64 * 1024  # leading whitespace beyond this is left to libxml2 to judge


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


def _content(prefix: bytes) -> bytes | None:
    """The input's first bytes without a UTF-8 BOM and leading whitespace; None for UTF-16,
    which libxml2 decodes and judges. The one place these bytes are read."""
    if prefix.startswith(_UTF16_BOMS) or prefix[:2] in (b"<\x00", b"\x00<"):
        return None
    body = prefix[3:] if prefix.startswith(_UTF8_BOM) else prefix
    return body.lstrip(_WHITESPACE)


def _decided(prefix: bytes) -> bool:
    """Whether the input's first bytes say enough to judge them (BOMs can be 3 bytes)."""
    if len(prefix) < 4:
        return False
    content = _content(prefix)
    return content is None or bool(content)


def sniff(prefix: bytes, complete: bool) -> None:
    """Refuse empty input and input that plainly is not XML, before libxml2 sees it.

    `complete`: the prefix is the whole input. Otherwise an undecided prefix (only
    whitespace so far) passes, and libxml2 judges the rest.
    """
    if not prefix and complete:
        raise ConversionError(EMPTY_INPUT, "the input is empty")
    stripped = _content(prefix)
    if stripped is None:
        return  # UTF-16: libxml2 decodes it and judges it
    if not stripped:
        if complete:
            raise ConversionError(EMPTY_INPUT, "the input contains only whitespace")
        return
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
        self.saw_content = False  # anything but whitespace (and a BOM) seen yet

    def chunks(self) -> Iterator[bytes]:
        if isinstance(self._source, (str, os.PathLike)):
            with open(self._source, "rb") as stream:
                yield from self._read(stream)
        else:
            yield from self._read(self._source)

    def _read(self, stream: BinaryIO) -> Iterator[bytes]:
        self.bytes_total = _total_size(stream)
        prefix = b""  # held back until sniffing can judge it
        sniffing = True
        while chunk := stream.read(self._chunk_size):
            self.bytes_done += len(chunk)
            if self._progress is not None:
                self._progress(self.bytes_done, max(self.bytes_total, self.bytes_done))
            if sniffing:
                prefix += chunk
                if not _decided(prefix) and len(prefix) < _SNIFF_BYTES:
                    continue
                sniff(prefix, complete=False)
                chunk, prefix, sniffing = prefix, b"", False
            yield self._seen(chunk)
        if sniffing:
            sniff(prefix, complete=True)
            yield self._seen(prefix)

    def _seen(self, chunk: bytes) -> bytes:
        if not self.saw_content:
            self.saw_content = _content(chunk) != b""
        return chunk
