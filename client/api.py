"""`Client`: the HTTP API's routes as methods (docs/api.md; usage: docs/client.md).

    from client import Client
    with Client("http://127.0.0.1:8000", api_key="…") as api:
        job = api.convert("orders.xml", "orders.csv", format="csv")

Uploads and downloads stream (a chunk at a time, never the whole file). A file of at least
`direct_min_bytes` goes straight into the service's object store when the server offers it
(client/direct.py), else through the API. 429 and 503 answers are
retried after the server's Retry-After, a bounded number of times; every POST carries an
Idempotency-Key (one is made when the caller gives none), so a retried submission never makes
a second job. Every refusal is raised as `ApiError`; a failed job as `JobFailed` (an ApiError).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, BinaryIO
from urllib.parse import quote

import requests

from converter.result_file import result_file

from . import errors
from .direct import DIRECT_MIN_BYTES, NOT_OFFERED, put_parts
from .errors import ApiError, JobFailed, ServerUnreachable, error_from_body
from .events import parse
from .options import to_params
from .retry import RETRY_STATUSES, Backoff, parse_retry_after, retry_delay
from .upload import CHUNK_BYTES, Progress, Upload
from .writing import WriteBehind

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 30.0  # seconds for the server to accept a connection, or to send anything
DEFAULT_RETRIES = 5  # per request, on 429 and 503
MAX_RETRY_WAIT = 120.0  # a Retry-After longer than this is not waited for: the error is raised
MAX_PAGE = 100  # GET /jobs's largest page
USER_AGENT = "its-convert-xml-client/0.1"
FINAL = ("succeeded", "failed", "cancelled")
# Refusals of a job's event stream that are about the job, not the stream: raised, not polled.
JOB_ERRORS = frozenset({"JOB_NOT_FOUND", "JOB_EXPIRED", "UNAUTHENTICATED"})

Job = dict[str, Any]
Source = str | os.PathLike[str] | BinaryIO
PhaseProgress = Callable[[str, float, "float | None"], None]  # (phase, done, total)


def _job_params(format: str, options: Mapping[str, Any] | None, tag: str | None,
                metadata: Mapping[str, Any] | str | None,
                webhook_url: str | None) -> dict[str, str]:
    params: dict[str, str] = {"format": format, **to_params(options)}
    if tag is not None:
        params["tag"] = tag
    if metadata is not None:
        params["metadata"] = (metadata if isinstance(metadata, str) else
                              json.dumps(metadata, separators=(",", ":")))
    if webhook_url is not None:
        params["webhook_url"] = webhook_url
    return params


def job_id_of(job: Job | str) -> str:
    """A job's id, from the job or the id itself."""
    if isinstance(job, Mapping):
        return str(job["id"])
    return str(job)


class Client:
    """One API server (and one API key). Safe to reuse across calls; `close()` or `with`
    releases its connections."""

    def __init__(self, url: str = DEFAULT_URL, api_key: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, *, retries: int = DEFAULT_RETRIES,
                 max_retry_wait: float = MAX_RETRY_WAIT,
                 direct_min_bytes: int | None = DIRECT_MIN_BYTES) -> None:
        self.url = url.rstrip("/")
        # Files of at least this size go straight to the object store when the server offers
        # it (None: never); set to None once the server said it does not.
        self.direct_min_bytes = direct_min_bytes
        self.timeout = timeout
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        self._session = requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT
        if api_key:
            self._session.headers["Authorization"] = f"Bearer {api_key}"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # -- the routes

    def submit(self, source: Source, format: str = "json",
               options: Mapping[str, Any] | None = None, tag: str | None = None,
               metadata: Mapping[str, Any] | str | None = None, webhook_url: str | None = None,
               idempotency_key: str | None = None, gzip: bool | int = False,
               progress: Progress | None = None, filename: str | None = None) -> Job:
        """Upload `source` (a path, or a binary stream read from where it stands) and queue
        its conversion: the job, as queued. The body streams as a raw application/xml
        request; `gzip=True` (or a level 1–9) compresses it on the wire. `progress(done,
        total)` is called with the source's bytes read so far (total None when unknown).
        `filename` names the input (default: the path's or stream's name)."""
        upload = Upload(source, gzip, progress)
        params = _job_params(format, options, tag, metadata, webhook_url)
        direct = self._direct_upload(upload, filename, progress)
        if direct is not None:  # the file is in the store: the job is made of it, no body
            params["upload_id"] = direct
            return self._json(self._request("POST", "/jobs", params=params))
        if filename or upload.filename:
            params["filename"] = str(filename or upload.filename)
        headers = {"Content-Type": "application/xml",
                   "Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        if upload.level is not None:
            headers["Content-Encoding"] = "gzip"
        try:
            response = self._request("POST", "/jobs", params=params, headers=headers,
                                     upload=upload)
        finally:
            upload.close()
        return self._json(response)

    def submit_url(self, url: str, format: str = "json",
                   options: Mapping[str, Any] | None = None, tag: str | None = None,
                   metadata: Mapping[str, Any] | str | None = None,
                   webhook_url: str | None = None,
                   idempotency_key: str | None = None) -> Job:
        """Queue the conversion of the XML at `url` (http or https), which the server fetches
        itself — nothing is uploaded from here: the job, as queued (`input.url` shows the URL
        without its query string; `progress.stage` is "fetching", then "converting"). A
        presigned URL carries its own credential; no request header can be given."""
        params = {**_job_params(format, options, tag, metadata, webhook_url), "input_url": url}
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        return self._json(self._request("POST", "/jobs", params=params, headers=headers))

    def _direct_upload(self, upload: Upload, filename: str | None,
                       progress: Progress | None) -> str | None:
        """Put a large, re-readable source straight into the object store: the upload's id, or
        None when it goes through the API instead (small, not re-readable, or the server does
        not offer direct uploads)."""
        if (self.direct_min_bytes is None or not upload.rereadable or upload.size is None
                or upload.size < self.direct_min_bytes):
            return None
        announced = {"size_bytes": upload.size}
        if filename or upload.filename:
            announced["filename"] = str(filename or upload.filename)
        try:
            offer = self._json(self._request("POST", "/uploads", json_body=announced))
        except ApiError as exc:
            if exc.status in (404, 501) and exc.code in NOT_OFFERED:
                self.direct_min_bytes = None  # asked once per client
                return None
            raise
        reader = open(upload.path, "rb") if upload.path else upload.stream  # noqa: SIM115
        assert reader is not None
        try:
            put_parts(offer, reader, upload.start, self.timeout, progress)
        except BaseException:
            with contextlib.suppress(ApiError):
                self._request("DELETE", "/uploads/" + quote(offer["id"], safe=""))
            raise
        finally:
            if upload.path:
                reader.close()
        return str(offer["id"])

    def get(self, job_id: Job | str) -> Job:
        """The job as it is now."""
        return self._json(self._request("GET", self._job_path(job_id)))

    def wait(self, job: Job | str, timeout: float | None = None,
             progress: Progress | None = None, *, stream: bool = True) -> Job:
        """Wait until the job finishes: the succeeded job, or JobFailed (code: the job's error
        code, or JOB_CANCELLED). The job's changes are pushed over GET /jobs/<id>/events
        (resumed with Last-Event-ID when a stream ends early); where the server or a proxy
        refuses or buffers the stream, or with `stream=False`, GET /jobs/<id> is polled, with
        pauses from 0.2 s growing to 5 s (or the server's Retry-After on a pending job, if
        shorter); a 429/503 waits its Retry-After. `progress(percent, 100.0)` at each change
        (each poll). After `timeout` seconds: ApiError WAIT_TIMEOUT (the job goes on)."""
        path = self._job_path(job)
        deadline = None if timeout is None else time.monotonic() + timeout
        current = self._follow(path, deadline, progress) if stream else None
        if current is None:
            current = self._poll(path, deadline, progress)
        return self._outcome(current, timeout)

    @staticmethod
    def _outcome(current: Job, timeout: float | None) -> Job:
        status = current.get("status")
        if status == "succeeded":
            return current
        if status in ("failed", "cancelled"):
            raise JobFailed(current)
        raise ApiError(None, errors.WAIT_TIMEOUT, f"the job is still {status} after {timeout} s",
                       {"job_id": current.get("id"), "status": status})

    def _poll(self, path: str, deadline: float | None, progress: Progress | None) -> Job:
        """GET the job until it finishes or the deadline passes: the job as last read."""
        backoff = Backoff()
        while True:
            response = self._request("GET", path)
            current = self._json(response)
            backoff.hint(parse_retry_after(response.headers.get("Retry-After")))
            if progress:
                progress(float((current.get("progress") or {}).get("percent") or 0.0), 100.0)
            if current.get("status") in FINAL:
                return current
            pause = backoff.pause()
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return current
                pause = min(pause, left)
            time.sleep(pause)

    def _follow(self, path: str, deadline: float | None,
                progress: Progress | None) -> Job | None:
        """The job's events until it finishes or the deadline passes: the job as last seen, or
        None when the stream cannot be used (refused: 429/503, a server without the route, a
        proxy that answers something else or sends nothing for `timeout` seconds) — the
        caller polls then. Errors about the job itself (404, 410, 401) are raised."""
        last_id: str | None = None
        current: Job | None = None
        quiet_ends = 0  # streams in a row that ended with no event: a proxy cutting them short
        while quiet_ends < 3:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return current
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            read_timeout = self.timeout if left is None else min(self.timeout, left + 0.05)
            try:
                response = self._session.get(self.url + path + "/events", headers=headers,
                                             stream=True, timeout=(self.timeout, read_timeout))
            except requests.RequestException:
                return None
            with response:
                if response.status_code == 204:  # finished, and we had its last event
                    return current
                if response.status_code >= 400:
                    error = self._error(response)
                    if error.code in JOB_ERRORS:
                        raise error
                    return None
                if not response.headers.get("Content-Type", "").startswith(
                        "text/event-stream"):
                    return None
                seen = False
                try:
                    for event in parse(response.iter_lines(decode_unicode=True)):
                        if event.name == "gone":
                            raise error_from_body(410, _json_or_none(event.data))
                        if event.name != "job":
                            continue
                        seen = True
                        last_id = event.id
                        current = json.loads(event.data)
                        if progress:
                            progress(float((current.get("progress") or {}).get("percent")
                                           or 0.0), 100.0)
                        if current.get("status") in FINAL:
                            return current
                except requests.RequestException:
                    if deadline is not None and time.monotonic() >= deadline:
                        return current
                    if not seen:
                        return None  # silent for `timeout` seconds: buffered, or gone away
                except ValueError:
                    return None  # not the job resource: not this API's stream
                quiet_ends = 0 if seen else quiet_ends + 1
        return None

    def download(self, job: Job | str, dest: str | os.PathLike[str] | IO[bytes],
                 progress: Progress | None = None) -> int:
        """Stream the job's result into `dest`: a path (complete or not at all, as `xmlconv
        convert -o` writes: converter/result_file.py) or a binary stream. Returns the bytes
        written. `progress(done, total)` as the bytes arrive."""
        path = self._job_path(job) + "/result"
        if not isinstance(dest, (str, os.PathLike)):
            return self._fetch(path, dest, progress)
        with result_file(dest) as out:
            return self._fetch(path, out, progress)

    def convert(self, source: Source, dest: str | os.PathLike[str] | IO[bytes],
                format: str = "json", options: Mapping[str, Any] | None = None, *,
                tag: str | None = None, metadata: Mapping[str, Any] | str | None = None,
                webhook_url: str | None = None, idempotency_key: str | None = None,
                gzip: bool | int = False, timeout: float | None = None,
                progress: PhaseProgress | None = None) -> Job:
        """submit(), wait() and download() in one: the succeeded job (JobFailed otherwise).
        `progress(phase, done, total)` with phase "upload", "convert" or "download"."""
        def phase(name: str) -> Progress | None:
            if progress is None:
                return None
            return lambda done, total: progress(name, done, total)

        job = self.submit(source, format, options, tag=tag, metadata=metadata,
                          webhook_url=webhook_url, idempotency_key=idempotency_key, gzip=gzip,
                          progress=phase("upload"))
        job = self.wait(job, timeout, progress=phase("convert"))
        self.download(job, dest, progress=phase("download"))
        return job

    def jobs(self, status: str | None = None, tag: str | None = None,
             limit: int | None = None, page_size: int | None = None) -> Iterator[Job]:
        """The caller's jobs, newest first, following each page's `next` link: every one, or
        the first `limit`. Filters: `status`, `tag`. Pages hold `page_size` jobs (default
        `limit` up to 100)."""
        if limit is not None and limit < 1:
            return
        size = page_size or min(limit or MAX_PAGE, MAX_PAGE)
        params: dict[str, Any] | None = {"limit": size}
        if status is not None:
            params["status"] = status
        if tag is not None:
            params["tag"] = tag
        path: str | None = "/jobs"
        count = 0
        while path:
            page = self._json(self._request("GET", path, params=params))
            for job in page.get("jobs", []):
                yield job
                count += 1
                if limit is not None and count >= limit:
                    return
            path, params = page.get("next"), None  # the link carries the whole query

    def cancel(self, job: Job | str) -> Job | None:
        """Cancel a queued or running job (the job, now cancelled), or delete a finished one
        and its files (None)."""
        response = self._request("DELETE", self._job_path(job))
        return None if response.status_code == 204 else self._json(response)

    # -- HTTP

    @staticmethod
    def _job_path(job: Job | str) -> str:
        return "/jobs/" + quote(job_id_of(job), safe="")

    def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None, upload: Upload | None = None,
                 stream: bool = False, json_body: Any = None) -> requests.Response:
        """One API call: the response (status < 400), or ApiError. A 429 or 503 is retried
        after its Retry-After (else 1, 2, 4 … s), at most `retries` times and never for a
        wait above `max_retry_wait`; an upload only when its source can be read again."""
        url = self.url + path
        attempt = 0
        while True:
            try:
                response = self._session.request(
                    method, url, params=params, headers=headers,
                    data=upload.body() if upload else None, json=json_body, stream=stream,
                    timeout=self.timeout)
            except requests.Timeout:
                raise ServerUnreachable(self.url, f"no answer within {self.timeout} s",
                                        errors.TIMEOUT) from None
            except requests.RequestException as exc:
                if upload is not None and upload.read_error is not None:
                    raise upload.read_error from None
                raise ServerUnreachable(self.url, _reason(exc)) from None
            if response.status_code < 400:
                return response
            error = self._error(response)
            if (response.status_code not in RETRY_STATUSES or attempt >= self.retries
                    or (upload is not None and not upload.rereadable)):
                raise error
            delay = retry_delay(attempt, error.retry_after)
            if delay > self.max_retry_wait:
                raise error
            time.sleep(delay)
            attempt += 1

    @staticmethod
    def _error(response: requests.Response) -> ApiError:
        with response:
            try:
                body = response.json()
            except ValueError:
                body = None
        return error_from_body(response.status_code, body, response.reason or "",
                               parse_retry_after(response.headers.get("Retry-After")))

    @staticmethod
    def _json(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ApiError(response.status_code, errors.INVALID_RESPONSE,
                           "the server's answer is not JSON",
                           {"content_type": response.headers.get("Content-Type")}) from None

    def _fetch(self, path: str, out: IO[bytes], progress: Progress | None) -> int:
        """Stream the result at `path` into `out`. A download that breaks off resumes where
        it stopped (`Range`, with `If-Range` naming the same result), at most `retries`
        times; when the server sends the whole result instead, it is written again from
        where `out` stood, if `out` can be rewound."""
        seekable = getattr(out, "seekable", None)  # any object with write() will do
        start = out.tell() if seekable is not None and seekable() else None
        done, attempt, total, version = 0, 0, None, None
        while True:
            headers = {"Range": f"bytes={done}-", "If-Range": version} if done else None
            with self._request("GET", path, headers=headers, stream=True) as response:
                resumed = response.status_code == 206 and response.headers.get(
                    "Content-Range", "").startswith(f"bytes {done}-")
                if done and not resumed:
                    if start is None:
                        raise ServerUnreachable(self.url, "the download broke off and could "
                                                "not resume where it stopped")
                    out.seek(start)
                    out.truncate()
                    done = 0
                if not done:
                    length = response.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                    ranges = response.headers.get("Accept-Ranges") == "bytes"
                    version = response.headers.get("ETag") if ranges else None
                try:
                    with WriteBehind(out) as writing:
                        for chunk in response.iter_content(CHUNK_BYTES):
                            writing.write(chunk)
                            done += len(chunk)
                            if progress:
                                progress(done, total)
                except requests.RequestException as exc:
                    if version is None or attempt >= self.retries:
                        raise ServerUnreachable(self.url, "the download broke off: "
                                                f"{_reason(exc)}") from None
                    attempt += 1
                    # a dropped connection, not a busy server: try again soon
                    time.sleep(retry_delay(attempt - 1, None, base=0.25, ceiling=5.0))
                    continue
            if progress and not done:
                progress(0, total)
            return done


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _reason(exc: requests.RequestException) -> str:
    """The innermost cause's words ("Connection refused"), not urllib3's whole repr."""
    cause: BaseException = exc
    while True:
        inner = cause.__context__ or cause.__cause__
        if inner is None or inner is cause:
            break
        cause = inner
    for candidate in (cause, exc):
        text = getattr(candidate, "strerror", None) or str(candidate)
        if text:
            return text.split(": ", 1)[-1] if "Errno" in text else text
    return type(exc).__name__
