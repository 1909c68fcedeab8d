"""Where a job's files live: its uploaded input and its converted result.

`Storage` is the small interface the API and the worker program against; `LocalStorage` keeps the
files under DATA_DIR/jobs/<job id>/ (input.xml, result.<ext>). An S3-compatible backend can
implement the same methods; `S3Storage` (jobs/storage_s3.py, STORAGE_URL=s3://...) does, for
workers on more than one host. `open_storage(settings)` picks one by STORAGE_URL.

A client may also put its input straight into an object store (POST /uploads): storage hands out
presigned part URLs of a multipart upload under the job's input key (`start_direct_upload`),
and completes it once the parts are there and within the size limit (`complete_direct_upload`).
`LocalStorage` has no URLs to give: DirectUploadUnsupported.

An upload never fills the disk: `LocalStorage` keeps `min_free_bytes` free on DATA_DIR's
filesystem (os.statvfs), refusing an upload before it starts (`check_room`, with the size it
announces) and stopping it before the chunk that would cross the line (StorageFull; nothing is
kept). An object store has no such figure to read: `S3Storage.check_room` checks nothing.

Every write is atomic: a file is written under a temporary name, flushed to disk, then renamed, so
a reader never sees half a file and a crash never leaves one under the final name. Job ids are
checked to be UUID4 strings before any path is built from them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import unquote, urlparse

from common.background import Background
from common.errors import StorageError, StorageFull

from .store import is_job_id

if TYPE_CHECKING:
    from common.settings import Settings

INPUT_NAME = "input.xml"
PARTIAL_SUFFIX = ".part"


@dataclass(frozen=True)
class DirectUpload:
    """A multipart upload a client fills itself: part `n` (from 1) goes to `urls[n - 1]` with
    `part_size` bytes (the last one the rest)."""

    storage_upload_id: str
    part_size: int
    urls: list[str]


class DirectUploadUnsupported(StorageError):
    """This storage has no URLs a client could put an input to (a local directory)."""


class UploadIncomplete(StorageError):
    """The parts received do not (yet) make the announced object."""

    def __init__(self, received: int, expected: int, parts: int) -> None:
        super().__init__(f"{received} of {expected} bytes in {parts} parts")
        self.received = received
        self.expected = expected
        self.parts = parts


class UploadTooLarge(StorageError):
    """The parts received add up to more than the size limit: nothing of them is kept."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes, more than {limit}")
        self.size = size
        self.limit = limit


class Storage(Protocol):
    def save_input(self, job_id: str, chunks: Iterable[bytes]) -> int: ...
    def open_input(self, job_id: str) -> BinaryIO: ...
    def write_result(
        self, job_id: str, extension: str
    ) -> contextlib.AbstractContextManager[BinaryIO]: ...
    def open_result(self, job_id: str, extension: str) -> BinaryIO: ...
    def result_url(self, job_id: str, extension: str, *, content_type: str,
                   content_disposition: str, ttl_seconds: int) -> str | None: ...
    def discard_output(self, job_id: str) -> None: ...
    def delete_input(self, job_id: str) -> None: ...
    def delete(self, job_id: str) -> None: ...
    def expired(self, older_than_seconds: float) -> Iterator[str]: ...
    def check_writable(self) -> None: ...
    def check_room(self, size: int) -> None: ...
    def direct_upload_origin(self) -> str | None: ...
    def start_direct_upload(self, job_id: str, size: int, ttl_seconds: int) -> DirectUpload: ...
    def complete_direct_upload(self, job_id: str, storage_upload_id: str, expected: int,
                               limit: int) -> int: ...
    def abort_direct_upload(self, job_id: str, storage_upload_id: str) -> None: ...
    def unfinished_uploads(self, older_than_seconds: float) -> Iterator[str]: ...


class LocalStorage:
    """Storage on a local (or shared) filesystem under `root`."""

    def __init__(self, root: Path, min_free_bytes: int = 0) -> None:
        self.root = Path(root)
        self.jobs_dir = self.root / "jobs"
        self.min_free_bytes = min_free_bytes

    def _dir(self, job_id: str) -> Path:
        if not is_job_id(job_id):
            raise StorageError(f"not a job id: {job_id!r}")
        return self.jobs_dir / job_id

    @staticmethod
    def _partial_name(final: Path) -> Path:
        return final.with_name(f"{final.name}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}")

    @staticmethod
    def _commit(handle: BinaryIO, partial: Path, final: Path) -> None:
        handle.flush()
        os.fsync(handle.fileno())
        partial.rename(final)

    # -- input

    def save_input(self, job_id: str, chunks: Iterable[bytes]) -> int:
        """Write the upload chunk by chunk, each only if `min_free_bytes` stay free after it
        (else StorageFull, as for a full disk); on any error nothing of the job is left
        behind."""
        directory = self._dir(job_id)
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / INPUT_NAME
        partial = self._partial_name(final)
        written = 0
        try:
            # Each chunk is written on a native thread while the caller reads the next one
            # (common/background.py).
            with open(partial, "wb") as handle, Background() as writing:
                for chunk in chunks:
                    self.check_room(len(chunk))
                    writing.run(handle.write, chunk)
                    written += len(chunk)
                writing.run(self._commit, handle, partial, final)  # fsync: not on the loop
                writing.wait()
        except OSError as exc:
            shutil.rmtree(directory, ignore_errors=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull(self.free_bytes(), self.min_free_bytes) from None
            raise
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return written

    def free_bytes(self) -> int:
        """What an unprivileged writer may still write on the root's filesystem."""
        found = os.statvfs(self.root if self.root.exists() else self.root.parent)
        return found.f_bavail * found.f_frsize

    def check_room(self, size: int) -> None:
        """Raise StorageFull unless `size` more bytes leave `min_free_bytes` free."""
        if not self.min_free_bytes:
            return  # nothing kept free: a full disk still ends the upload (ENOSPC)
        free = self.free_bytes()
        if free - size < self.min_free_bytes:
            raise StorageFull(free, self.min_free_bytes)

    def open_input(self, job_id: str) -> BinaryIO:
        try:
            return open(self._dir(job_id) / INPUT_NAME, "rb")
        except FileNotFoundError:
            raise StorageError(f"no input for job {job_id}") from None

    def delete_input(self, job_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self._dir(job_id) / INPUT_NAME).unlink()

    # -- result

    @contextlib.contextmanager
    def write_result(self, job_id: str, extension: str) -> Iterator[BinaryIO]:
        """Yield a file to write the result to; it appears under its final name only if the
        block finishes without an exception, otherwise the partial file is removed."""
        directory = self._dir(job_id)
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / f"result.{extension}"
        partial = self._partial_name(final)
        with open(partial, "wb") as handle:
            try:
                yield handle
                self._commit(handle, partial, final)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    partial.unlink()

    def open_result(self, job_id: str, extension: str) -> BinaryIO:
        try:
            return open(self._dir(job_id) / f"result.{extension}", "rb")
        except FileNotFoundError:
            raise StorageError(f"no result for job {job_id}") from None

    def result_url(self, job_id: str, extension: str, *, content_type: str,
                   content_disposition: str, ttl_seconds: int) -> str | None:
        """None: a local file has no URL of its own; the API streams it."""
        return None

    def discard_output(self, job_id: str) -> None:
        """Remove any result, whole or half-written (a redelivered job starts clean)."""
        for leftover in self._dir(job_id).glob("result.*"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()

    # -- whole jobs

    def delete(self, job_id: str) -> None:
        shutil.rmtree(self._dir(job_id), ignore_errors=True)

    def expired(self, older_than_seconds: float) -> Iterator[str]:
        """Ids of jobs whose files have not changed for `older_than_seconds`."""
        cutoff = time.time() - older_than_seconds
        if not self.jobs_dir.is_dir():
            return
        for directory in self.jobs_dir.iterdir():
            if not is_job_id(directory.name):
                continue
            try:
                newest = max([directory.stat().st_mtime] +
                             [f.stat().st_mtime for f in directory.iterdir()])
            except FileNotFoundError:
                continue  # deleted while we looked
            if newest < cutoff:
                yield directory.name

    # -- direct uploads: none (the API streams every upload)

    def direct_upload_origin(self) -> str | None:
        return None

    def start_direct_upload(self, job_id: str, size: int, ttl_seconds: int) -> DirectUpload:
        raise DirectUploadUnsupported("local storage has no URLs a client could upload to")

    def complete_direct_upload(self, job_id: str, storage_upload_id: str, expected: int,
                               limit: int) -> int:
        raise DirectUploadUnsupported("local storage has no direct uploads")

    def abort_direct_upload(self, job_id: str, storage_upload_id: str) -> None:
        """Nothing to abort: there are none."""

    def unfinished_uploads(self, older_than_seconds: float) -> Iterator[str]:
        """None: a partial file is a file, found by expired()."""
        return iter(())

    def check_writable(self) -> None:
        """Raise OSError unless a file can be created, written and removed under the root."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        probe = self.root / f".probe-{uuid.uuid4().hex}"
        try:
            probe.write_bytes(b"ok")
        finally:
            with contextlib.suppress(FileNotFoundError):
                probe.unlink()


def open_storage(settings: Settings) -> Storage:
    """The backend STORAGE_URL names: `file://` (a local or shared directory) or `s3://`."""
    url = settings.storage_url or settings.data_dir.as_uri()
    if url.startswith("s3://"):
        from .storage_s3 import S3Storage  # boto3 only where it is used

        return S3Storage.from_url(url, settings.s3_endpoint_url, settings.s3_region)
    return LocalStorage(Path(unquote(urlparse(url).path)), settings.storage_min_free_bytes)
