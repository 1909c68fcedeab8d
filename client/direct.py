"""Direct uploads: the file goes straight into the service's object store, not through the API.

    POST /uploads {"size_bytes", "filename"} → part URLs (presigned: they carry their own
    authority); each part is PUT to its URL with its exact length; then POST /jobs?upload_id=…

The client uses this by itself for a file of at least `DIRECT_MIN_BYTES` when the server
offers it; a server that does not (local storage: 501 DIRECT_UPLOAD_UNAVAILABLE; an older one:
404 on /uploads) is remembered, and the file is streamed through POST /jobs instead. A part
whose PUT fails is sent again (the source is read again from the part's start); when the
upload cannot be finished it is given up (DELETE /uploads/<id>), so that its quota slot comes
back at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import IO, Any

import requests

from . import errors
from .errors import ApiError, ServerUnreachable
from .upload import CHUNK_BYTES, Progress

DIRECT_MIN_BYTES = 16 * 1024 * 1024  # below this, one request through the API is as good
PART_ATTEMPTS = 4
PART_BACKOFF = 0.5  # seconds before a part's second attempt, doubling
# The server does not offer direct uploads: stream through POST /jobs.
NOT_OFFERED = ("DIRECT_UPLOAD_UNAVAILABLE", "NOT_FOUND")


class PartBody:
    """`length` bytes of `reader` from `offset`, a chunk at a time, with a length (requests
    then sends Content-Length, which a presigned PUT needs)."""

    def __init__(self, reader: IO[bytes], offset: int, length: int,
                 progress: Callable[[int], None]) -> None:
        self.reader = reader
        self.offset = offset
        self.length = length
        self.progress = progress

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        self.reader.seek(self.offset)
        left = self.length
        while left > 0:
            chunk = self.reader.read(min(CHUNK_BYTES, left))
            if not chunk:
                raise OSError("the file became shorter while it was uploaded")
            left -= len(chunk)
            self.progress(len(chunk))
            yield chunk


def put_parts(offer: dict[str, Any], reader: IO[bytes], start: int, timeout: float,
              progress: Progress | None) -> None:
    """PUT every part of the offer (POST /uploads' answer) from `reader` (the file from
    `start`), in order. A session of its own: the API key must never reach the object
    store."""
    total = int(offer["size_bytes"])
    done = [0]

    def step(size: int) -> None:
        done[0] += size
        if progress:
            progress(done[0], total)

    with requests.Session() as store:
        offset = start
        for part in offer["parts"]:
            length = int(part["size_bytes"])
            before = done[0]
            for attempt in range(PART_ATTEMPTS):
                done[0] = before
                last = attempt == PART_ATTEMPTS - 1
                try:
                    answer = store.put(part["url"], data=PartBody(reader, offset, length, step),
                                       timeout=timeout)
                except requests.RequestException as exc:
                    if last:
                        raise ServerUnreachable(part["url"].split("?")[0],
                                                f"part {part['part_number']}: {exc}") from None
                else:
                    if answer.status_code < 300:
                        break
                    if answer.status_code < 500 or last:
                        raise ApiError(answer.status_code, errors.HTTP_ERROR,
                                       f"the object store refused part {part['part_number']}",
                                       {"part_number": part["part_number"],
                                        "answer": answer.text[:200]})
                time.sleep(PART_BACKOFF * 2 ** attempt)
            offset += length
