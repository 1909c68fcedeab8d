"""Receiving an upload without holding it: the request body flows chunk by chunk through
(multipart demultiplexing) → (gunzip) → size limit + sha256 → storage.

Nothing here reads `request.files`, `request.form` or `request.get_data()`: those would spool or
buffer the whole body. The size limit applies to the XML as stored (after decompression), so a
gzip bomb stops at MAX_UPLOAD_BYTES, and the limit is checked before each chunk is written.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from flask import Request
from gunicorn.http.errors import NoMoreData, ParseException
from werkzeug.exceptions import ClientDisconnected
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from common import errors
from common.background import Background
from common.errors import ServiceError
from converter.errors import EMPTY_INPUT
from jobs import Storage

CHUNK_BYTES = 1024 * 1024
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # boundaries, part headers and small form fields
MAX_FIELDS_BYTES = 64 * 1024  # all non-file form fields together
MAX_PENDING_HEADER_BYTES = 256 * 1024  # a part header or preamble longer than this is refused
DRAIN_BYTES = 16 * 1024 * 1024  # after refusing a body, read at most this much of it…
DRAIN_SECONDS = 2.0  # …for at most this long, so that the client can read our answer
RAW_TYPES = ("application/xml", "text/xml")
GZIP_TYPES = ("application/gzip", "application/x-gzip")
DEFAULT_FILENAME = "upload.xml"


@dataclass
class Upload:
    filename: str
    size: int
    sha256: str
    fields: dict[str, str] = field(default_factory=dict)


def too_large(limit: int) -> ServiceError:
    return ServiceError(errors.PAYLOAD_TOO_LARGE,
                        f"the XML exceeds the upload limit of {limit} bytes", {"max_bytes": limit},
                        status=413, headers={"Connection": "close"})


def _bad_request(message: str, code: str = errors.INVALID_REQUEST) -> ServiceError:
    return ServiceError(code, message, status=400)


def take_turns() -> None:
    """Let other requests run between two chunks of an upload.

    The API runs on gevent's loop (gunicorn_config.py): a fast client always has data waiting
    on its socket, so reading never blocks, and an upload would hold the loop from its first
    chunk to its last (measured: /health waited ~1.2 s during a local 300 MB upload). A sleep
    of 0 is not enough, as gevent may resume this greenlet before the loop polls for I/O
    (/health p50 ~200 ms); any positive sleep waits for the loop's next turn, which does
    (p50 ~10 ms, for ~5 µs a chunk). Under threads it is a short sleep, as harmless."""
    time.sleep(1e-6)


TURN_SECONDS = 0.002  # at most this long without a turn for other requests, whatever the input


class Turns:
    """Takes turns with other requests when TURN_SECONDS have passed since the last one: for
    loops that may run long without reading the socket or yielding output (many empty gzip
    members, many tiny multipart parts)."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def maybe(self) -> None:
        if time.monotonic() - self.last >= TURN_SECONDS:
            take_turns()
            self.taken()

    def taken(self) -> None:
        self.last = time.monotonic()


def request_timeout() -> ServiceError:
    return ServiceError(errors.REQUEST_TIMEOUT,
                        "the request body stopped arriving: nothing was received for too long",
                        status=408, headers={"Connection": "close"})


def body_ended_early(content_length: int | None, received: int) -> ServiceError:
    if content_length is None:  # chunked: the connection ended before the last chunk
        return ServiceError(errors.INVALID_REQUEST, "the body ended before its last chunk",
                            {"received_bytes": received}, status=400,
                            headers={"Connection": "close"})
    return ServiceError(errors.INVALID_REQUEST, "the body ended before Content-Length bytes",
                        {"content_length": content_length, "received_bytes": received}, status=400,
                        headers={"Connection": "close"})


def malformed_chunks() -> ServiceError:
    return ServiceError(errors.INVALID_REQUEST, "the body's chunked transfer encoding is malformed",
                        status=400, headers={"Connection": "close"})


def empty_upload() -> ServiceError:
    return ServiceError(EMPTY_INPUT, "the upload is empty: send the XML document", status=400)


def read_chunks(stream: BinaryIO, content_length: int | None = None) -> Iterator[bytes]:
    """The body, CHUNK_BYTES at a time. A client that sends nothing for API_CLIENT_TIMEOUT
    seconds (the socket's timeout, see api/gunicorn_worker.py) is refused with 408; a body that
    ends before its Content-Length (or its last chunk), or whose chunked framing is malformed,
    with 400 (the connection then closes: its framing is lost). Takes turns with other requests
    after each chunk."""
    received = 0
    while True:
        try:
            chunk = stream.read(CHUNK_BYTES)
        except TimeoutError:
            raise request_timeout() from None
        except ClientDisconnected as exc:  # Werkzeug's LimitedStream, when it wraps the input
            if isinstance(exc.__context__, TimeoutError):
                raise request_timeout() from None
            raise body_ended_early(content_length, received) from None
        except (NoMoreData, ConnectionError):  # gunicorn: the client closed or reset mid-body
            raise body_ended_early(content_length, received) from None
        except ParseException:  # gunicorn: a bad chunk size, extension or terminator
            raise malformed_chunks() from None
        if not chunk:
            # gunicorn ends a body of known length quietly when the client stops short.
            if content_length is not None and received < content_length:
                raise body_ended_early(content_length, received)
            return
        received += len(chunk)
        yield chunk
        take_turns()


GZIP_FIRST_WINDOW = 64  # bytes first fed to a new gzip member (an empty one is 20)
_NOT_ZERO = re.compile(rb"[^\x00]")


def too_many_members(limit: int) -> ServiceError:
    return ServiceError(errors.TOO_MANY_GZIP_MEMBERS,
                        f"the gzip data has more than {limit} members", {"max_members": limit},
                        status=413, headers={"Connection": "close"})


def gunzip(chunks: Iterable[bytes], max_members: int | None = None) -> Iterator[bytes]:
    """Decompress gzip (one or more members, at most `max_members`); each output piece is at
    most CHUNK_BYTES, so a small, highly compressed input never becomes a large buffer.

    Linear in the input whatever its members: when a member ends, zlib copies what follows it
    (`unused_data`), so the input is fed in a window that starts small with each member and
    doubles while the member goes on — the copy is at most about twice the member's own size,
    never the rest of the chunk (which made 50,000 empty members in one 1 MiB chunk cost ~6 s).
    Takes turns with other requests at least every TURN_SECONDS, output or not."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    started = False  # the current member has been fed bytes
    members = 0  # members ended so far
    window = GZIP_FIRST_WINDOW
    turns = Turns()
    try:
        for chunk in chunks:
            view, pos, end = memoryview(chunk), 0, len(chunk)
            while pos < end:
                turns.maybe()
                if not started:
                    if members:  # zero padding after a member (as gzip allows)
                        found = _NOT_ZERO.search(chunk, pos)
                        if found is None:
                            break
                        pos = found.start()
                    if max_members is not None and members >= max_members:
                        raise too_many_members(max_members)
                    started, window = True, GZIP_FIRST_WINDOW
                piece = view[pos:pos + window]
                out = decompressor.decompress(piece, CHUNK_BYTES)
                if decompressor.eof:
                    # What follows this member; never unconsumed_tail as well, which may still
                    # hold the same bytes after a call cut short by max_length.
                    pos += len(piece) - len(decompressor.unused_data)
                    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    started, members = False, members + 1
                else:
                    tail = len(decompressor.unconsumed_tail)
                    pos += len(piece) - tail
                    if not tail:
                        window = min(2 * window, CHUNK_BYTES)
                if out:
                    yield out
                    take_turns()
                    turns.taken()
        if started and not decompressor.eof:
            raise zlib.error("truncated")
    except zlib.error:
        raise _bad_request("the upload is not valid gzip data", errors.INVALID_GZIP) from None


class Meter:
    """Counts and hashes the stored bytes, refusing the chunk that would cross the limit, and
    an upload of no bytes at all. Each chunk is hashed on a native thread while it is stored
    and the next one read (common/background.py); the hash is complete once the chunks are."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.sha256 = hashlib.sha256()

    def __call__(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        with Background() as hashing:
            for chunk in chunks:
                self.size += len(chunk)
                if self.size > self.limit:
                    raise too_large(self.limit)
                hashing.run(self.sha256.update, chunk)
                yield chunk
        if self.size == 0:  # refused now rather than failing its job later
            raise empty_upload()


def _limited(chunks: Iterable[bytes], limit: int) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise too_large(limit)
        yield chunk


class MultipartForm:
    """Streams the `file` part of a multipart/form-data body; collects the other fields.

    Bounded whatever the form: at most `max_parts` parts of any kind (413
    TOO_MANY_FORM_PARTS), and the other fields' names and values together at most
    MAX_FIELDS_BYTES (400) — a name is kept as a key, so it counts as much as a value. Both are
    refused as the part arrives, before anything of it is kept. Takes turns with other requests
    while it works through many small parts."""

    def __init__(self, body: Iterable[bytes], boundary: str, max_parts: int | None = None
                 ) -> None:
        self.body = body
        self.decoder = MultipartDecoder(boundary.encode("latin-1"))
        self.max_parts = max_parts
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.file_type: str | None = None
        self._fields_bytes = 0
        self._parts = 0

    def file_chunks(self) -> Iterator[bytes]:
        target: str | None = None  # "file", a field name, or None to skip the part
        value = bytearray()
        turns = Turns()
        for chunk in _hold_back_dashes(self.body):
            self.decoder.receive_data(chunk)
            while not isinstance(event := self._next_event(), NeedData | Epilogue):
                turns.maybe()
                if isinstance(event, File | Field):
                    self._count_part()
                if isinstance(event, File) and event.name == "file":
                    if self.filename is not None:
                        raise _bad_request("send one file per request")
                    target, self.filename = "file", event.filename or DEFAULT_FILENAME
                    self.file_type = event.headers.get("content-type")
                elif isinstance(event, Field):
                    name = event.name or ""  # a nameless part is skipped, its name counts
                    self._count_field_bytes(len(name.encode("utf-8", "surrogateescape")))
                    target, value = event.name, bytearray()
                elif isinstance(event, File):
                    target = None  # another file field: not ours, skipped
                elif isinstance(event, Data):
                    if target == "file":
                        if event.data:
                            yield event.data
                    elif target is not None:
                        self._count_field_bytes(len(event.data))
                        value += event.data
                        if not event.more_data:
                            self.fields[target] = value.decode("utf-8", "replace")
            if len(self.decoder.buffer) > MAX_PENDING_HEADER_BYTES + CHUNK_BYTES:
                raise _bad_request("the multipart body is malformed")
        if self.filename is None:
            raise ServiceError(errors.MISSING_FILE, "the form has no 'file' part", status=400)

    def _count_part(self) -> None:
        self._parts += 1
        if self.max_parts is not None and self._parts > self.max_parts:
            raise ServiceError(errors.TOO_MANY_FORM_PARTS,
                               f"the form has more than {self.max_parts} parts",
                               {"max_parts": self.max_parts}, status=413,
                               headers={"Connection": "close"})

    def _count_field_bytes(self, size: int) -> None:
        self._fields_bytes += size
        if self._fields_bytes > MAX_FIELDS_BYTES:
            raise ServiceError(errors.INVALID_REQUEST, "the form fields are too large: their "
                               f"names and values together exceed {MAX_FIELDS_BYTES} bytes",
                               {"max_fields_bytes": MAX_FIELDS_BYTES}, status=400)

    def _next_event(self) -> object:
        try:
            return self.decoder.next_event()
        except ValueError:
            raise _bad_request("the multipart body is malformed") from None


MAX_HELD_BACK_BYTES = 64


def _hold_back_dashes(body: Iterable[bytes]) -> Iterator[bytes | None]:
    """The body for werkzeug's MultipartDecoder, then None (its end). A piece never ends in a
    short run of dashes or blanks: werkzeug (3.1.9, pallets/werkzeug#3285) turns the CR before
    a closing delimiter cut between its two dashes into file data. Such a run waits for the
    next piece; at most MAX_HELD_BACK_BYTES are held, so memory stays bounded."""
    held = b""
    for chunk in body:
        data = held + chunk
        tail = len(data) - len(data.rstrip(b"- \t"))
        if 0 < tail <= MAX_HELD_BACK_BYTES:
            data, held = data[:-tail], data[-tail:]
        else:
            held = b""
        if data:
            yield data
    if held:
        yield held
    yield None


def _is_gzip_name(filename: str | None) -> bool:
    name = safe_filename(filename)
    return bool(name) and name.lower().endswith(".gz")


MAX_FILENAME_CHARS = 255
# Dropped from file names: C0/C1 controls (CR, LF, NUL, DEL, …), line and paragraph
# separators, lone surrogates, and the bidirectional controls that make a name read other than
# it is ("a\u202egpj.exe" shows as "aexe.jpg"). Letters of every script, and joiners, stay.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                           "\u2066\u2067\u2068\u2069")


def safe_filename(filename: str | None) -> str | None:
    """A client's file name fit to keep and to send back in a header: control characters
    dropped, only its last path part (after `/` or `\\`), blanks around it stripped; None when
    nothing (or only dots) is left."""
    kept = "".join(c for c in filename or "" if c not in _BIDI_CONTROLS
                   and unicodedata.category(c) not in _DROPPED_CATEGORIES)
    name = kept.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name if name.strip(".") else None


def _stored_name(filename: str | None) -> str:
    name = safe_filename(filename) or ""
    if name.lower().endswith(".gz"):
        name = name[:-3]
    name = name[:MAX_FILENAME_CHARS].strip()
    return name if name.strip(".") else DEFAULT_FILENAME


def check_request(request: Request, limit: int) -> None:
    """Refuse what can be refused before reading the body: media type, encoding, size.
    Such refusals close the connection rather than read a body that may never come."""
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        if not request.mimetype_params.get("boundary"):
            raise _bad_request("multipart/form-data needs a boundary")
        overhead = MULTIPART_OVERHEAD_BYTES
    elif mimetype in RAW_TYPES:
        overhead = 0
    else:
        raise ServiceError(errors.UNSUPPORTED_MEDIA_TYPE,
                           "send multipart/form-data with a 'file' part, or an application/xml "
                           "or text/xml body", {"content_type": request.content_type or ""},
                           status=415, headers={"Connection": "close"})
    transfer = request.headers.get("Transfer-Encoding") or ""
    if {c.strip().lower() for c in transfer.split(",")} - {"", "chunked", "identity"}:
        # gunicorn refuses unknown codings itself, but passes gzip, deflate and compress on
        # undecoded: they would be stored as the XML.
        raise ServiceError(errors.HTTP_ERROR,
                           "Transfer-Encoding other than chunked is not supported; gzip is sent "
                           "as Content-Encoding: gzip", {"transfer_encoding": transfer},
                           status=501, headers={"Connection": "close"})
    encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip"):
        raise ServiceError(errors.UNSUPPORTED_MEDIA_TYPE, "Content-Encoding must be gzip or absent",
                           {"content_encoding": encoding}, status=415,
                           headers={"Connection": "close"})
    # A compressed body is (for XML, always) smaller than what it expands to; a tiny
    # allowance covers gzip's framing on incompressible data.
    allowance = overhead + limit // 1000 + 1024
    if request.content_length is not None and request.content_length > limit + allowance:
        raise too_large(limit)


def receive_upload(request: Request, storage: Storage, job_id: str, limit: int, *,
                   max_gzip_members: int | None = None, max_form_parts: int | None = None
                   ) -> Upload:
    """Stream the request body into the job's input file. On any error nothing is kept.
    `max_gzip_members` bounds each gzip layer's members, `max_form_parts` a form's parts (None:
    unbounded; the API passes its settings)."""
    body: Iterable[bytes] = read_chunks(request.stream, request.content_length)
    if (request.headers.get("Content-Encoding") or "").strip().lower() in ("gzip", "x-gzip"):
        body = _limited(gunzip(body, max_gzip_members), limit + MULTIPART_OVERHEAD_BYTES)

    meter = Meter(limit)
    if request.mimetype == "multipart/form-data":
        form = MultipartForm(body, request.mimetype_params["boundary"], max_form_parts)
        chunks = _file_pipeline(form.file_chunks(), lambda: _is_gzip_name(form.filename) or (
            form.file_type or "").split(";")[0].strip().lower() in GZIP_TYPES, max_gzip_members)
        storage.save_input(job_id, meter(chunks))
        return Upload(_stored_name(form.filename), meter.size, meter.sha256.hexdigest(),
                      form.fields)

    filename = request.args.get("filename")
    chunks = gunzip(body, max_gzip_members) if _is_gzip_name(filename) else body
    storage.save_input(job_id, meter(chunks))
    return Upload(_stored_name(filename), meter.size, meter.sha256.hexdigest())


def _file_pipeline(chunks: Iterator[bytes], is_gzip: Callable[[], bool],
                   max_gzip_members: int | None) -> Iterator[bytes]:
    """Whether the file part is gzip is known from its part header, which is parsed while the
    first chunk is pulled: decide then."""
    first = next(chunks, None)
    rest = itertools.chain([first] if first is not None else [], chunks)
    yield from (gunzip(rest, max_gzip_members) if is_gzip() else rest)


def drain(request: Request) -> None:
    """Read (and drop) a little of a refused body, so that a client still sending can read our
    answer instead of a reset connection. Bounded in bytes and time; the connection closes."""
    deadline = time.monotonic() + DRAIN_SECONDS
    remaining = DRAIN_BYTES
    try:
        while remaining > 0 and time.monotonic() < deadline:
            chunk = request.stream.read(min(CHUNK_BYTES, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
    except Exception:  # the client went away: nothing left to answer
        return
