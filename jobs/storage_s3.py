"""Storage in an S3-compatible object store (STORAGE_URL=s3://bucket[/prefix]).

The same verbs as `LocalStorage`, so that the API and workers on different hosts share no
directory. Keys: `<prefix>/jobs/<job id>/input.xml` and `<prefix>/jobs/<job id>/result.<ext>`.

Memory stays flat whatever the file's size:

- writes (`save_input`, `write_result`) buffer one part (PART_SIZE) at a time and send it as a
  part of a multipart upload; an object smaller than one part is sent with a single PUT. The
  object appears under its key only when the upload completes, which happens only when the
  writer finished without an exception; otherwise the multipart upload is aborted, so nothing
  half-written is left (or billed).
- reads (`open_input`, `open_result`) stream `get_object`'s body through a buffered, seekable
  reader: a seek away from where the body is makes the next read issue a ranged GET. The input is
  streamed, not spooled to a local file (the converter reads it once, front to back; seeking is
  only used to learn its size for progress).

Direct uploads (POST /uploads): `start_direct_upload` creates the multipart upload of the job's
input key and presigns a PUT URL for each part; the client sends the parts to the store itself;
`complete_direct_upload` lists the parts (ListParts: their sizes, as the store counted them),
refuses and aborts an upload past the size limit, leaves an incomplete one open, and completes
the rest. The object appears under the same key a streamed upload would have, so the worker
reads it the same way.

Credentials come from boto3's own chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, an
instance role), never from our settings. Job ids are checked before any key is built.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from common.errors import StorageError

from .storage import DirectUpload, UploadIncomplete, UploadTooLarge
from .store import is_job_id

INPUT_NAME = "input.xml"
MiB = 1024 * 1024
PART_SIZE = 8 * MiB  # S3's smallest part (but the last) is 5 MiB
READ_BUFFER = 1 * MiB
_DELETE_BATCH = 1000  # delete_objects' limit
MAX_PARTS = 10000  # S3's limit of parts in one multipart upload
ORIGIN_PROBE_ID = "00000000-0000-4000-8000-000000000000"  # a job id only presigned, never used


def direct_part_size(size: int, smallest: int = PART_SIZE) -> int:
    """The part size of a direct upload of `size` bytes: PART_SIZE, or whole MiBs more when the
    object would need more than MAX_PARTS parts."""
    needed = -(-size // MAX_PARTS)
    return max(smallest, -(-needed // MiB) * MiB)


def make_client(endpoint_url: str = "", region: str = "us-east-1", **credentials: str) -> Any:
    """A boto3 S3 client. Checksums only where S3 requires them: S3-compatible stores (MinIO,
    SeaweedFS, R2, ...) do not all accept the CRC32 trailers recent boto3 sends by default."""
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=region or None,
        signature_version="s3v4",  # presigned URLs too (SigV2 is deprecated, and mis-signs
        # response-content-* parameters on some stores)
        retries={"max_attempts": 5, "mode": "standard"},
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client("s3", endpoint_url=endpoint_url or None, config=config, **credentials)


def _not_found(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchUpload")


class _Upload:
    """One object being written: parts of `part_size` go out as they fill; `complete()` makes the
    object appear, `abort()` leaves nothing behind."""

    def __init__(self, client: Any, bucket: str, key: str, part_size: int) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.part_size = part_size
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict] = []
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        written = len(view)
        self.size += written
        while len(self.buffer) + len(view) >= self.part_size:
            room = self.part_size - len(self.buffer)
            self.buffer += view[:room]
            view = view[room:]
            self._send_part()
        self.buffer += view
        return written

    def _send_part(self) -> None:
        """Send the buffer as the next part; a new buffer takes its place (the part itself is
        sent as it is, not copied)."""
        if self.upload_id is None:
            self.upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key)["UploadId"]
        body, self.buffer = self.buffer, bytearray()
        number = len(self.parts) + 1
        answer = self.client.upload_part(Bucket=self.bucket, Key=self.key, PartNumber=number,
                                         UploadId=self.upload_id, Body=body)
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def complete(self) -> None:
        if self.upload_id is None:  # smaller than one part: one PUT
            self.client.put_object(Bucket=self.bucket, Key=self.key, Body=self.buffer)
            self.buffer = bytearray()
            return
        if self.buffer:
            self._send_part()
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts})
        self.upload_id = None

    def abort(self) -> None:
        self.buffer = bytearray()
        if self.upload_id is not None:
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key,
                                                   UploadId=self.upload_id)
            self.upload_id = None


class _Writer(io.RawIOBase):
    """The writable binary file `write_result` yields; `tell()` is the bytes written so far."""

    def __init__(self, upload: _Upload) -> None:
        super().__init__()
        self._upload = upload

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("write to a closed result")
        return self._upload.write(memoryview(data).cast("B"))

    def tell(self) -> int:
        return self._upload.size


class _Reader(io.RawIOBase):
    """A seekable, readable object: one streaming GET, a ranged GET again after a seek."""

    def __init__(self, client: Any, bucket: str, key: str, size: int) -> None:
        super().__init__()
        self._client = client
        self._bucket = bucket
        self._key = key
        self._size = size
        self._pos = 0
        self._body: Any = None
        self._body_pos = -1

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._size or len(buffer) == 0:
            return 0
        if self._body is None or self._body_pos != self._pos:
            self._close_body()
            try:
                answer = self._client.get_object(Bucket=self._bucket, Key=self._key,
                                                 Range=f"bytes={self._pos}-")
            except Exception as exc:
                if _not_found(exc):
                    raise StorageError(f"no object {self._key}") from None
                raise
            self._body = answer["Body"]
            self._body_pos = self._pos
        data = self._body.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._pos += n
        self._body_pos += n
        return n

    def _close_body(self) -> None:
        if self._body is not None:
            with contextlib.suppress(Exception):
                self._body.close()
            self._body = None

    def close(self) -> None:
        self._close_body()
        super().close()


class S3Storage:
    """Storage in bucket `bucket` under key prefix `prefix` (may be empty)."""

    def __init__(self, client: Any, bucket: str, prefix: str = "", *,
                 part_size: int = PART_SIZE) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.part_size = part_size
        self._jobs = f"{self.prefix}/jobs/" if self.prefix else "jobs/"
        self._origin: str | None = None  # direct_upload_origin's, once found

    @classmethod
    def from_url(cls, url: str, endpoint_url: str = "", region: str = "us-east-1"
                 ) -> S3Storage:
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        return cls(make_client(endpoint_url, region), bucket, prefix)

    # -- keys

    def job_prefix(self, job_id: str) -> str:
        if not is_job_id(job_id):
            raise StorageError(f"not a job id: {job_id!r}")
        return f"{self._jobs}{job_id}/"

    def _input_key(self, job_id: str) -> str:
        return self.job_prefix(job_id) + INPUT_NAME

    def _result_key(self, job_id: str, extension: str) -> str:
        if not extension.isalnum():
            raise StorageError(f"not an extension: {extension!r}")
        return f"{self.job_prefix(job_id)}result.{extension}"

    # -- input

    def save_input(self, job_id: str, chunks: Iterable[bytes]) -> int:
        """Upload the stream part by part; on any error nothing of the job is left behind."""
        upload = _Upload(self.client, self.bucket, self._input_key(job_id), self.part_size)
        try:
            for chunk in chunks:
                upload.write(chunk)
            upload.complete()
        except BaseException:
            upload.abort()
            with contextlib.suppress(Exception):
                self.delete(job_id)
            raise
        return upload.size

    def open_input(self, job_id: str) -> BinaryIO:
        return self._open(self._input_key(job_id), f"no input for job {job_id}")

    def delete_input(self, job_id: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._input_key(job_id))

    # -- result

    @contextlib.contextmanager
    def write_result(self, job_id: str, extension: str) -> Iterator[BinaryIO]:
        """Yield a file to write the result to; the object appears under its key only if the
        block finishes without an exception, otherwise the multipart upload is aborted."""
        upload = _Upload(self.client, self.bucket, self._result_key(job_id, extension),
                         self.part_size)
        writer = _Writer(upload)
        try:
            yield writer  # type: ignore[misc]
            upload.complete()
        except BaseException:
            upload.abort()
            raise
        finally:
            writer.close()

    def open_result(self, job_id: str, extension: str) -> BinaryIO:
        return self._open(self._result_key(job_id, extension), f"no result for job {job_id}")

    def result_url(self, job_id: str, extension: str, *, content_type: str,
                   content_disposition: str, ttl_seconds: int) -> str:
        """A presigned GET of the result, valid `ttl_seconds`, answered with these headers
        (RESULT_DELIVERY=redirect). StorageError when there is no result."""
        key = self._result_key(job_id, extension)
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _not_found(exc):
                raise StorageError(f"no result for job {job_id}") from None
            raise
        return self.client.generate_presigned_url("get_object", ExpiresIn=ttl_seconds, Params={
            "Bucket": self.bucket, "Key": key, "ResponseContentType": content_type,
            "ResponseContentDisposition": content_disposition})

    def discard_output(self, job_id: str) -> None:
        """Remove any result, whole or still being uploaded (a redelivered job starts clean)."""
        self._delete_prefix(self.job_prefix(job_id) + "result.")

    # -- whole jobs

    def delete(self, job_id: str) -> None:
        self._delete_prefix(self.job_prefix(job_id))

    def expired(self, older_than_seconds: float) -> Iterator[str]:
        """Ids of jobs whose newest object is older than `older_than_seconds`. Keys are listed
        in order, so a job's objects come together: one job is held at a time."""
        cutoff = time.time() - older_than_seconds
        current, newest = None, 0.0
        for item in self._list(self._jobs):
            job_id = item["Key"][len(self._jobs):].partition("/")[0]
            if not is_job_id(job_id):
                continue
            stamp = item["LastModified"].timestamp()
            if job_id != current:
                if current is not None and newest < cutoff:
                    yield current
                current, newest = job_id, stamp
            else:
                newest = max(newest, stamp)
        if current is not None and newest < cutoff:
            yield current

    # -- direct uploads

    def direct_upload_origin(self) -> str | None:
        """The origin (scheme://host[:port]) that part URLs point to, for the page's
        Content-Security-Policy; None without credentials to presign with (then no direct
        upload could be offered either). Presigning is local: no request; and found once (the
        endpoint does not change), not on every page load."""
        from botocore.exceptions import BotoCoreError

        if self._origin is not None:
            return self._origin
        try:
            url = self.client.generate_presigned_url("upload_part", ExpiresIn=60, Params={
                "Bucket": self.bucket, "Key": self._input_key(ORIGIN_PROBE_ID),
                "UploadId": "-", "PartNumber": 1})
        except BotoCoreError:
            return None
        parts = urlsplit(url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        return self._origin

    def start_direct_upload(self, job_id: str, size: int, ttl_seconds: int) -> DirectUpload:
        """A multipart upload of the job's input and a presigned PUT URL per part, each valid
        `ttl_seconds`."""
        key = self._input_key(job_id)
        part_size = direct_part_size(size, self.part_size)
        count = max(1, -(-size // part_size))
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        urls = [self.client.generate_presigned_url("upload_part", ExpiresIn=ttl_seconds, Params={
            "Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number})
            for number in range(1, count + 1)]
        return DirectUpload(upload_id, part_size, urls)

    def complete_direct_upload(self, job_id: str, storage_upload_id: str, expected: int,
                               limit: int) -> int:
        """Complete the client's upload and return the object's size: UploadTooLarge (the
        parts are aborted, nothing kept) when the parts add up to more than `limit`;
        UploadIncomplete (still open) when they are not parts 1…n of `expected` bytes. An
        upload completed before (a retry whose first answer was lost) answers its size."""
        key = self._input_key(job_id)
        try:
            parts = list(self._parts(key, storage_upload_id))
        except Exception as exc:
            if not _not_found(exc):
                raise
            return self._completed_size(job_id, key, limit)
        size = sum(int(part["Size"]) for part in parts)
        if size > limit:
            self.abort_direct_upload(job_id, storage_upload_id)
            raise UploadTooLarge(size, limit)
        numbers = [int(part["PartNumber"]) for part in parts]
        if size != expected or numbers != list(range(1, len(parts) + 1)):
            raise UploadIncomplete(size, expected, len(parts))
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=storage_upload_id,
            MultipartUpload={"Parts": [{"PartNumber": int(part["PartNumber"]),
                                        "ETag": part["ETag"]} for part in parts]})
        return self._completed_size(job_id, key, limit)

    def _parts(self, key: str, storage_upload_id: str) -> Iterator[dict]:
        paginator = self.client.get_paginator("list_parts")
        for page in paginator.paginate(Bucket=self.bucket, Key=key, UploadId=storage_upload_id):
            yield from page.get("Parts", [])

    def _completed_size(self, job_id: str, key: str, limit: int) -> int:
        try:
            size = int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except Exception as exc:
            if _not_found(exc):
                raise StorageError(f"no upload for job {job_id}") from None
            raise
        if size > limit:
            self.delete(job_id)
            raise UploadTooLarge(size, limit)
        return size

    def abort_direct_upload(self, job_id: str, storage_upload_id: str) -> None:
        """Abort the client's upload and remove whatever of the job's input is there."""
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._input_key(job_id),
                                               UploadId=storage_upload_id)
        self.delete(job_id)

    def unfinished_uploads(self, older_than_seconds: float) -> Iterator[str]:
        """Ids of jobs with a multipart upload started more than `older_than_seconds` ago and
        never completed (a direct upload its client gave up, a writer killed mid-way)."""
        cutoff = time.time() - older_than_seconds
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._jobs):
            for upload in page.get("Uploads", []):
                job_id = upload["Key"][len(self._jobs):].partition("/")[0]
                if is_job_id(job_id) and upload["Initiated"].timestamp() < cutoff:
                    yield job_id

    def check_writable(self) -> None:
        """Raise OSError unless an object can be put and deleted under the prefix."""
        key = f"{self.prefix}/.probe-{uuid.uuid4().hex}" if self.prefix else \
            f".probe-{uuid.uuid4().hex}"
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=b"ok")
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except OSError:
            raise
        except Exception as exc:
            raise OSError(f"object store not writable: {type(exc).__name__}") from exc

    # -- helpers

    def check_room(self, size: int) -> None:
        """Nothing to check: an object store has no free space to read (STORAGE_MIN_FREE_BYTES
        applies to local storage only; a bucket's quota, where it has one, fails the write)."""

    def _open(self, key: str, missing: str) -> BinaryIO:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _not_found(exc):
                raise StorageError(missing) from None
            raise
        raw = _Reader(self.client, self.bucket, key, int(head["ContentLength"]))
        return io.BufferedReader(raw, buffer_size=READ_BUFFER)  # type: ignore[return-value]

    def _list(self, prefix: str) -> Iterator[dict]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def _delete_prefix(self, prefix: str) -> None:
        """Delete every object under `prefix` and abort its unfinished multipart uploads."""
        batch: list[dict] = []
        for item in self._list(prefix):
            batch.append({"Key": item["Key"]})
            if len(batch) == _DELETE_BATCH:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                with contextlib.suppress(Exception):
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])

    def _delete_batch(self, batch: list[dict]) -> None:
        if len(batch) == 1:  # one plain DELETE: every S3-compatible store has it
            self.client.delete_object(Bucket=self.bucket, Key=batch[0]["Key"])
            return
        self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
