"""What `Client.submit` sends: the source (a path or a binary stream) read a chunk at a time,
gzip-compressed on the way when asked, never held whole.

A path is opened again for each attempt; a stream is rewound to where it started when it is
seekable. A stream that is not (a pipe, a socket) can be sent once only: `rereadable` is False
and the client does not retry such an upload.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterator
from typing import IO, BinaryIO

CHUNK_BYTES = 1 << 20
GZIP_LEVEL = 6  # gzip(1)'s default

Progress = Callable[[float, "float | None"], None]  # (done, total or None when unknown)


def gzip_level(gzip: bool | int) -> int | None:
    """submit()'s `gzip` argument: False/0 (none), True (level 6) or a level 1–9."""
    if gzip is False or gzip is None:
        return None
    if gzip is True:
        return GZIP_LEVEL
    if isinstance(gzip, int) and 1 <= gzip <= 9:
        return gzip
    raise ValueError(f"gzip must be True, False or a level from 1 to 9, not {gzip!r}")


class Body:
    """An iterable request body: requests sends it with chunked transfer encoding."""

    def __init__(self, reader: IO[bytes], gzip: int | None, total: int | None,
                 progress: Progress | None) -> None:
        self.reader = reader
        self.gzip = gzip
        self.total = total
        self.progress = progress
        self.read_error: OSError | None = None  # requests reports it as a connection error

    def __iter__(self) -> Iterator[bytes]:
        compressor = (zlib.compressobj(self.gzip, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
                      if self.gzip else None)
        done = 0
        while True:
            try:
                chunk = self.reader.read(CHUNK_BYTES)
            except OSError as exc:
                self.read_error = exc
                raise
            if not chunk:
                break
            done += len(chunk)
            if compressor is None:
                yield chunk
            elif packed := compressor.compress(chunk):
                yield packed
            if self.progress:
                self.progress(done, self.total)
        if compressor is not None:
            yield compressor.flush()
        if self.progress and not done:
            self.progress(0, self.total)


class SizedBody(Body):
    """A body of known length (an uncompressed file): sent with Content-Length."""

    def __len__(self) -> int:
        return self.total or 0


class Upload:
    """One source for one submit(), with as many attempts as the retries need."""

    def __init__(self, source: str | os.PathLike[str] | BinaryIO, gzip: bool | int = False,
                 progress: Progress | None = None) -> None:
        self.level = gzip_level(gzip)
        self.progress = progress
        self._opened: BinaryIO | None = None
        self._attempts = 0
        self._body: Body | None = None
        if isinstance(source, (str, os.PathLike)):
            self.path: str | None = os.fspath(source)
            self.stream: BinaryIO | None = None
            self.filename: str | None = os.path.basename(self.path) or None
            self.size: int | None = os.stat(self.path).st_size  # FileNotFoundError, early
            self.rereadable = True
            self._start = 0
        else:
            self.path, self.stream = None, source
            name = getattr(source, "name", None)
            self.filename = (os.path.basename(name) or None if isinstance(name, str)
                             and not name.startswith("<") else None)
            self.rereadable = _seekable(source)
            self._start = source.tell() if self.rereadable else 0
            self.size = (source.seek(0, os.SEEK_END) - self._start) if self.rereadable else None
            if self.rereadable:
                source.seek(self._start)

    def body(self) -> Body:
        """The body for the next attempt (the source read from its start again)."""
        if self._attempts and not self.rereadable:
            raise ValueError("the upload stream cannot be read a second time")
        self._attempts += 1
        if self.path is not None:
            self.close()
            self._opened = open(self.path, "rb")  # noqa: SIM115 (closed by close())
            reader: BinaryIO = self._opened
        else:
            assert self.stream is not None
            if self.rereadable:
                self.stream.seek(self._start)
            reader = self.stream
        kind = SizedBody if self.level is None and self.size else Body
        self._body = kind(reader, self.level, self.size, self.progress)
        return self._body

    @property
    def start(self) -> int:
        """Where the source starts: 0 for a path, where a stream stood when given."""
        return self._start

    @property
    def read_error(self) -> OSError | None:
        """The error reading the source met during the last attempt, if any."""
        return self._body.read_error if self._body else None

    def close(self) -> None:
        if self._opened is not None:
            self._opened.close()
            self._opened = None


def _seekable(stream: BinaryIO) -> bool:
    try:
        if not stream.seekable():
            return False
        stream.tell()
    except (AttributeError, OSError, ValueError):
        return False
    return True
