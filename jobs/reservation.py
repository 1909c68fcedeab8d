"""An upload's place in its key's quota, held from before its body is read until it becomes a
job (or fails).

`max_active_jobs` counts a key's unfinished jobs *and* its uploads in flight: without the
second, a key with a limit of 1 could stream eight 50 MB bodies at once and be refused seven
times only once each had been stored. A reservation is a member of the key's uploads set in
Redis (jobs/keys.py `owner_uploads`) under the job id the upload will have, scored by when it
lapses. While the upload streams, a background thread (a greenlet under the API's gevent)
refreshes it every third of its lifetime, so an upload may take as long as it needs; if the API
process dies, nothing refreshes it and the slot comes back within UPLOAD_RESERVATION_SECONDS.
JobStore.create turns it into the job in the same script that counts the quota; leaving the
`with` block gives it back whatever happened (a no-op once the job holds the slot).
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

import redis

from .store import JobStore

log = logging.getLogger(__name__)


class QuotaFull(Exception):
    """The key's unfinished jobs and uploads in flight already fill its max_active_jobs."""


class Reservation:
    """`with Reservation(...)`: the slot is held inside the block (QuotaFull on entry when
    there is none), and given back on the way out."""

    def __init__(self, store: JobStore, owner: str, upload_id: str, max_active: int,
                 seconds: int) -> None:
        self._store = store
        self.owner = owner
        self.upload_id = upload_id
        self.max_active = max_active
        self.seconds = seconds
        self._done = threading.Event()
        self._keeper: threading.Thread | None = None

    def __enter__(self) -> Reservation:
        if not self._store.reserve(self.owner, self.upload_id, self.max_active, self.seconds):
            raise QuotaFull()
        self._keeper = threading.Thread(target=self._keep, name="upload-reservation",
                                        daemon=True)
        self._keeper.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._done.set()
        if self._keeper is not None:
            self._keeper.join(timeout=5)
        try:
            self._store.release(self.owner, self.upload_id)
        except redis.RedisError as error:  # it lapses by itself
            log.warning("upload reservation not released: %s", type(error).__name__)

    def _keep(self) -> None:
        while not self._done.wait(self.seconds / 3):
            try:
                held = self._store.reserve(self.owner, self.upload_id, self.max_active,
                                           self.seconds)
            except redis.RedisError as error:  # tried again at the next turn
                log.warning("upload reservation not refreshed: %s", type(error).__name__)
                continue
            if not held:  # lapsed and taken meanwhile: the job's creation decides
                log.warning("upload reservation lapsed and its slot was taken")
