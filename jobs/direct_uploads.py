"""Direct uploads' records: what the API must remember of a POST /uploads until the upload becomes
its job (POST /jobs?upload_id=…) or lapses.

One hash per upload (jobs/keys.py `direct_upload`), under the id the job will have. It lives
UPLOAD_URL_TTL_SECONDS (the part URLs' life) plus the tombstone time, so that an upload past its
expiry answers 410 to its owner for as long as an expired job would, and then nothing. `claimed`
is set while one request completes the upload, so that two at once do not both try.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from . import keys


@dataclass(frozen=True)
class UploadRecord:
    id: str
    owner: str
    storage_upload_id: str
    size: int
    filename: str
    expires_at: float
    used: bool  # the job was created from it

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


class DirectUploads:
    def __init__(self, client: redis.Redis, tombstone_ttl_seconds: int) -> None:
        self.redis = client
        self.tombstone_ttl = tombstone_ttl_seconds

    def add(self, record: UploadRecord) -> None:
        key = keys.direct_upload(record.id)
        ttl = max(1, round(record.expires_at - time.time())) + self.tombstone_ttl
        with self.redis.pipeline() as pipe:
            pipe.hset(key, mapping={
                "owner": record.owner, "storage_upload_id": record.storage_upload_id,
                "size": record.size, "filename": record.filename,
                "expires_at": repr(record.expires_at), "used": "0"})
            pipe.expire(key, ttl)
            pipe.execute()

    def get(self, upload_id: str) -> UploadRecord | None:
        data = self.redis.hgetall(keys.direct_upload(upload_id))
        if not data:
            return None
        text = {str(k): str(v) for k, v in data.items()}  # decode_responses: str already
        return UploadRecord(upload_id, text["owner"], text["storage_upload_id"],
                            int(text["size"]), text["filename"], float(text["expires_at"]),
                            text.get("used") == "1")

    def claim(self, upload_id: str) -> bool:
        """True for the one request that may complete the upload now."""
        return bool(self.redis.hsetnx(keys.direct_upload(upload_id), "claimed", "1"))

    def unclaim(self, upload_id: str) -> None:
        self.redis.hdel(keys.direct_upload(upload_id), "claimed")

    def used(self, upload_id: str) -> None:
        """The upload became its job: a repeated POST /jobs answers that job."""
        self.redis.hset(keys.direct_upload(upload_id), "used", "1")

    def expire_now(self, upload_id: str) -> None:
        """Given up (DELETE /uploads/<id>) or refused: its id answers 410 from now on."""
        key = keys.direct_upload(upload_id)
        with self.redis.pipeline() as pipe:
            pipe.hset(key, "expires_at", repr(time.time()))
            pipe.hdel(key, "claimed")
            pipe.execute()
