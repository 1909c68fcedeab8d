"""The job store: one Redis hash per job, and every change of a job's status.

A job's life, forward only:

    queued ──▶ running ──▶ succeeded | failed | cancelled
      │  ▲       │
      │  │       ├─▶ running   (its message came again: a new run replaces the old one)
      │  └───────┘             (requeue: the run was lost; a new dispatch is queued)
      └──▶ cancelled

Each transition is one Lua script, so that two processes racing (a client cancelling while a
worker finishes, a redelivered task while the first run is still reporting) cannot both win.

- A queued job carries a *dispatch* token, and so does the Celery message that queues it. A worker
  claims a job only with the message of its current dispatch: after a requeue, an older message
  (the broker redelivering it much later) is refused, so no job runs twice from two messages.
- A running job belongs to one *run* (`run_id`): progress and the final status are accepted only
  from the run that owns the job, so a superseded run can never write a second result.
- `attempts` counts claims; past `max_attempts` a claim or a requeue fails the job instead.

Bookkeeping beside the hashes (jobs/keys.py): `running` scores each running job by its last
sign of life (its run's progress, or its worker's heartbeat), so that a run that vanished is
found within seconds; `unpublished` holds queued jobs whose message may not have reached the
broker yet, so that a message lost between the two steps is sent again; `active` holds every
unfinished job, so that the metrics count queued ones without reading a record.

Keys expire: an unfinished job lives `tombstone_ttl_seconds`, a finished one
`result_ttl_seconds` after it finished. A tombstone outlives the record by `tombstone_ttl_seconds`
so that `get()` can tell an expired job (410) from one that never existed (404).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from common.logs import utc_timestamp

from . import keys
from .status import Claim, Created, Creation, JobStatus, Ownership, Requeue

# A replica acknowledges the primary's stream every second: one silent for longer than this is
# not keeping up (stopped, cut off), and a submission's WAIT would not hear from it.
REPLICA_MAX_LAG_SECONDS = 3


def new_job_id() -> str:
    return str(uuid.uuid4())


def new_token() -> str:
    return uuid.uuid4().hex


def is_job_id(value: str) -> bool:
    """Only canonical UUID4 strings are job ids (nothing else ever reaches a path or a key)."""
    try:
        parsed = uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return parsed.version == 4 and str(parsed) == value


# KEYS: job, tombstone, idempotency, unpublished, owner's jobs, owner's active jobs, active jobs,
#       owner's uploads
# ARGV: job_id, record_ttl, tombstone_ttl, idempotency_ttl ("0" = no key), now, owner,
#       max_active ("0" = no limit), field, value, …
# Returns the new job's id, the earlier job's id for a known Idempotency-Key, or 'quota'. The
# upload's reservation (under the job's id) becomes the job: its slot is counted once, and a
# reservation that lapsed meanwhile is taken again only if there is room.
_CREATE = """
if ARGV[4] ~= '0' then
  local existing = redis.call('GET', KEYS[3])
  if existing then return existing end
end
local now = tonumber(ARGV[5])
redis.call('ZREM', KEYS[8], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - tonumber(ARGV[2]))
if ARGV[7] ~= '0' and
   redis.call('ZCARD', KEYS[6]) + redis.call('ZCARD', KEYS[8]) >= tonumber(ARGV[7]) then
  return 'quota'
end
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[6], 'EX', ARGV[3])
if ARGV[4] ~= '0' then redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[4]) end
redis.call('ZADD', KEYS[4], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - tonumber(ARGV[2]))
redis.call('ZADD', KEYS[5], now, ARGV[1])
redis.call('EXPIRE', KEYS[5], ARGV[2])
redis.call('ZADD', KEYS[6], now, ARGV[1])
redis.call('EXPIRE', KEYS[6], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now - tonumber(ARGV[2]))
redis.call('ZADD', KEYS[7], now, ARGV[1])
return ARGV[1]
"""

# KEYS: owner's active jobs, owner's uploads
# ARGV: upload id, now, record_ttl, max_active ("0" = no limit), lapses_at, key_ttl
# Takes a slot for an upload in flight, or refreshes it (a lapsed one is taken again only if
# there is room). Returns 1 when the upload holds its slot, 0 when the owner's unfinished jobs
# and other uploads fill `max_active`.
_RESERVE = """
local now = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) and ARGV[4] ~= '0' then
  local active = redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[3]), '+inf')
  if active + redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 0 end
end
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[6])
return 1
"""

# KEYS: job, unpublished.  ARGV: job_id, dispatch
# The message of this dispatch is with the broker: nothing left to send again.
# Returns 1 when the record holds this dispatch (0: it is gone, or queued again meanwhile).
_PUBLISHED = """
local held = redis.call('HGET', KEYS[1], 'dispatch') == ARGV[2]
if held or redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
end
if held then return 1 end
return 0
"""

# Tell the job's watchers (GET /jobs/<id>/events, jobs/events.py) about a change just written:
# the record's `version` goes up by one (the event's id) and the whole record is published on
# the job's channel, in the same script as the change, so that no change is written without
# its event and one job's events are published in the order of its changes.
_ANNOUNCE = f"""
local function announce(job, job_id)
  redis.call('HINCRBY', job, 'version', 1)
  redis.call('PUBLISH', '{keys.events_prefix()}' .. job_id,
             cjson.encode(redis.call('HGETALL', job)))
end
"""

# A job that has just ended (keys as JobStore._final_keys): its record and tombstone expire, it
# leaves the running, unpublished, owner's and active indexes, and its watchers are told.
_ENDED = _ANNOUNCE + """
local function ended(job_id, record_ttl, tombstone_ttl)
  redis.call('EXPIRE', KEYS[1], record_ttl)
  redis.call('EXPIRE', KEYS[2], tombstone_ttl)
  for i = 3, 6 do redis.call('ZREM', KEYS[i], job_id) end
  announce(KEYS[1], job_id)
end
"""

# Fail a job in place (used inside other scripts): fields, TTLs, bookkeeping.
_FAIL_IN_PLACE = _ANNOUNCE + """
local function fail_in_place(job, tombstone, job_id, now, error, record_ttl, tombstone_ttl)
  redis.call('HSET', job, 'status', 'failed', 'error', error, 'finished_at', now,
             'updated_at', now)
  redis.call('EXPIRE', job, record_ttl)
  redis.call('EXPIRE', tombstone, tombstone_ttl)
  redis.call('ZREM', KEYS[3], job_id)
  redis.call('ZREM', KEYS[4], job_id)
  redis.call('ZREM', KEYS[5], job_id)
  redis.call('ZREM', KEYS[6], job_id)
  announce(job, job_id)
end
"""

# KEYS: job, tombstone, running, unpublished, owner's active jobs, active jobs
# ARGV: job_id, run_id, now, worker, dispatch ("" = any), max_attempts, error, record_ttl,
#       tombstone_ttl
# Returns the status before the call, 'stale' or 'exhausted'; the job is this run's only if
# that was queued or running.
_START = _FAIL_IN_PLACE + """
local current = redis.call('HMGET', KEYS[1], 'status', 'dispatch', 'attempts')
local status = current[1]
if not status then return false end
if status ~= 'queued' and status ~= 'running' then return status end
if ARGV[5] ~= '' and current[2] and current[2] ~= ARGV[5] then return 'stale' end
if tonumber(current[3] or '0') >= tonumber(ARGV[6]) then
  fail_in_place(KEYS[1], KEYS[2], ARGV[1], ARGV[3], ARGV[7], ARGV[8], ARGV[9])
  return 'exhausted'
end
redis.call('HSET', KEYS[1], 'status', 'running', 'run_id', ARGV[2], 'started_at', ARGV[3],
           'updated_at', ARGV[3], 'bytes_done', '0', 'worker', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
announce(KEYS[1], ARGV[1])
return status
"""

# KEYS: job, running.  ARGV: job_id, run_id, now, bytes_done, bytes_total, field, value, …
# Returns the job's status, or 'superseded' when another run owns it.
_PROGRESS = _ANNOUNCE + """
local current = redis.call('HMGET', KEYS[1], 'status', 'run_id')
if not current[1] then return false end
if current[1] ~= 'running' then return current[1] end
if current[2] ~= ARGV[2] then return 'superseded' end
redis.call('HSET', KEYS[1], 'bytes_done', ARGV[4], 'bytes_total', ARGV[5], 'updated_at', ARGV[3])
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
announce(KEYS[1], ARGV[1])
return 'running'
"""

# KEYS: job, tombstone, running, unpublished, owner's active jobs, active jobs.
# ARGV: job_id, run_id, record_ttl, tombstone_ttl, field, value, …
# Returns 'ok' when this run moved the job to its final status, else the status it found.
_FINISH = _ENDED + """
local current = redis.call('HMGET', KEYS[1], 'status', 'run_id')
if not current[1] then return false end
if current[1] ~= 'running' then return current[1] end
if ARGV[2] ~= '*' and current[2] ~= ARGV[2] then return 'superseded' end
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
ended(ARGV[1], ARGV[3], ARGV[4])
return 'ok'
"""

# KEYS: job, tombstone, running, unpublished, owner's active jobs, active jobs.
# ARGV: job_id, run_id, now, dispatch, max_attempts, error, record_ttl, tombstone_ttl
# The run `run_id` is gone: queue the job again under a new dispatch, or fail it once it has
# been claimed max_attempts times. Returns 'requeued', 'failed', or what it found instead.
_REQUEUE = _FAIL_IN_PLACE + """
local current = redis.call('HMGET', KEYS[1], 'status', 'run_id', 'attempts')
if not current[1] then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return false
end
if current[1] ~= 'running' then return current[1] end
if current[2] ~= ARGV[2] then return 'superseded' end
if tonumber(current[3] or '0') >= tonumber(ARGV[5]) then
  fail_in_place(KEYS[1], KEYS[2], ARGV[1], ARGV[3], ARGV[6], ARGV[7], ARGV[8])
  return 'failed'
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'dispatch', ARGV[4], 'run_id', '',
           'bytes_done', '0', 'updated_at', ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
announce(KEYS[1], ARGV[1])
return 'requeued'
"""

# KEYS: job, unpublished.  ARGV: job_id, dispatch, new dispatch, now
# A queued job whose message (of `dispatch`) was received by a worker that never claimed it:
# queue it under a new dispatch. Returns 'requeued', or nothing when the job moved on.
_REDISPATCH = """
local current = redis.call('HMGET', KEYS[1], 'status', 'dispatch')
if current[1] ~= 'queued' or current[2] ~= ARGV[2] then return false end
redis.call('HSET', KEYS[1], 'dispatch', ARGV[3], 'updated_at', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 'requeued'
"""

# KEYS: job, tombstone, running, unpublished, owner's active jobs, active jobs.
# ARGV: job_id, now, record_ttl, tombstone_ttl
# Cancels an unfinished job, or deletes a finished one (its tombstone stays: later reads get 410).
# Returns the status before the call.
_DISCARD = _ENDED + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
if status == 'queued' or status == 'running' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[2], 'updated_at', ARGV[2])
  ended(ARGV[1], ARGV[3], ARGV[4])
else
  redis.call('DEL', KEYS[1])
end
return status
"""


# KEYS: job.  ARGV: delivery (JSON)
_RECORD_WEBHOOK = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'webhook', ARGV[1]) end
"""


# The scripts' own answers besides a status (each turned into a type below, never passed on).
_QUOTA_FULL, _STALE, _EXHAUSTED, _OK, _REQUEUED, _FAILED = (
    "quota", "stale", "exhausted", "ok", "requeued", "failed")
_CLAIMS = {JobStatus.QUEUED.value: Claim.STARTED, JobStatus.RUNNING.value: Claim.RESTARTED,
           _STALE: Claim.STALE, _EXHAUSTED: Claim.EXHAUSTED}


def _ownership(answer: str | None) -> Ownership:
    """A run's progress or finish script's answer: 'running' / 'ok' (the run's), the status it
    found, 'superseded', or nothing (gone)."""
    if answer in (JobStatus.RUNNING.value, _OK):
        return Ownership.OWNED
    if answer == JobStatus.CANCELLED.value:
        return Ownership.CANCELLED
    return Ownership.SUPERSEDED if answer else Ownership.GONE


def _num(value: str | None, kind: type = int) -> Any:
    return None if value in (None, "") else kind(value)


@dataclass(frozen=True)
class Job:
    """A job record as read from Redis (times are epoch seconds)."""

    id: str
    status: JobStatus
    format: str
    options: dict[str, Any]
    input_filename: str
    input_size: int
    input_sha256: str
    created_at: float
    request_id: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    updated_at: float | None = None
    bytes_done: int = 0
    bytes_total: int | None = None
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    run_id: str | None = None
    dispatch: str | None = None
    worker: str | None = None
    attempts: int = 0
    owner: str = ""  # the client (API key id) that created it; "" under AUTH_MODE=none
    tag: str | None = None
    metadata: dict[str, Any] | None = None
    webhook_url: str | None = None
    webhook: dict[str, Any] | None = None  # the delivery of its webhook, once finished
    input_url: str | None = None  # where the worker fetches the input from (no upload)
    stage: str | None = None  # an imported job's run: "fetching", then "converting"
    version: int = 0  # how many changes its watchers were told of: its latest event's id

    @property
    def finished(self) -> bool:
        return self.status.finished

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> Job:
        return cls(
            id=data["id"],
            status=JobStatus(data["status"]),
            format=data["format"],
            options=json.loads(data.get("options") or "{}"),
            input_filename=data.get("input_filename", ""),
            input_size=int(data.get("input_size") or 0),
            input_sha256=data.get("input_sha256", ""),
            created_at=float(data["created_at"]),
            request_id=data.get("request_id") or None,
            started_at=_num(data.get("started_at"), float),
            finished_at=_num(data.get("finished_at"), float),
            updated_at=_num(data.get("updated_at"), float),
            bytes_done=int(data.get("bytes_done") or 0),
            bytes_total=_num(data.get("bytes_total")),
            error=json.loads(data["error"]) if data.get("error") else None,
            result=json.loads(data["result"]) if data.get("result") else None,
            run_id=data.get("run_id") or None,
            dispatch=data.get("dispatch") or None,
            worker=data.get("worker") or None,
            attempts=int(data.get("attempts") or 0),
            owner=data.get("owner", ""),
            tag=data.get("tag") or None,
            metadata=json.loads(data["metadata"]) if data.get("metadata") else None,
            webhook_url=data.get("webhook_url") or None,
            webhook=json.loads(data["webhook"]) if data.get("webhook") else None,
            input_url=data.get("input_url") or None,
            stage=data.get("stage") or None,
            version=int(data.get("version") or 0),
        )


@dataclass(frozen=True)
class NewJob:
    """What the API knows about a job when it creates it."""

    format: str
    options: dict[str, Any]
    input_filename: str
    input_size: int
    input_sha256: str
    request_id: str | None = None
    owner: str = ""
    tag: str | None = None
    metadata: dict[str, Any] | None = None
    webhook_url: str | None = None
    input_url: str | None = None  # no upload: the worker fetches the input from here
    id: str = field(default_factory=new_job_id)
    dispatch: str = field(default_factory=new_token)


def _flatten(fields: dict[str, Any]) -> list[str]:
    flat: list[str] = []
    for name, value in fields.items():
        flat.append(name)
        flat.append(json.dumps(value) if isinstance(value, (dict, list)) else str(value))
    return flat


class NotReplicated(Exception):
    """Fewer replicas than required acknowledged a new job in time: a failover now could lose it,
    so it is not accepted."""

    def __init__(self, acknowledged: int, required: int) -> None:
        super().__init__(f"{acknowledged} of {required} replicas acknowledged the job")
        self.acknowledged = acknowledged
        self.required = required


class JobStore:
    """Reads and changes job records. Every method is one round trip (or one script)."""

    def __init__(
        self, client: redis.Redis, *, result_ttl_seconds: int, tombstone_ttl_seconds: int,
        min_replicas: int = 0, replica_timeout_ms: int = 1000,
    ) -> None:
        self.redis = client
        self.min_replicas = min_replicas
        self.replica_timeout_ms = replica_timeout_ms
        self.result_ttl = result_ttl_seconds
        self.tombstone_ttl = tombstone_ttl_seconds
        self._create = client.register_script(_CREATE)
        self._reserve = client.register_script(_RESERVE)
        self._published = client.register_script(_PUBLISHED)
        self._start = client.register_script(_START)
        self._progress = client.register_script(_PROGRESS)
        self._finish = client.register_script(_FINISH)
        self._requeue = client.register_script(_REQUEUE)
        self._redispatch = client.register_script(_REDISPATCH)
        self._discard = client.register_script(_DISCARD)
        self._record_webhook = client.register_script(_RECORD_WEBHOOK)

    def _final_keys(self, job_id: str, owner: str) -> list[str]:
        return [keys.job(job_id), keys.tombstone(job_id), keys.running_jobs(),
                keys.unpublished_jobs(), keys.owner_active(owner), keys.active_jobs()]

    def _final_ttls(self) -> list[int]:
        return [self.result_ttl, self.result_ttl + self.tombstone_ttl]

    # -- reading

    def get(self, job_id: str) -> Job | None:
        if not is_job_id(job_id):
            return None
        data = self.redis.hgetall(keys.job(job_id))
        return Job.from_hash(data) if data else None

    def existed(self, job_id: str, owner: str) -> bool:
        """True when the id belonged to a job of `owner` that has expired or been deleted (410,
        not 404)."""
        return is_job_id(job_id) and self.redis.get(keys.tombstone(job_id)) == owner

    def ping(self) -> None:
        self.redis.ping()

    def replicas_in_step(self) -> int:
        """The primary's replicas online and acknowledging its stream lately (INFO replication):
        what a submission's WAIT can hope to hear from."""
        info = self.redis.info("replication")
        found = (info.get(f"slave{n}") for n in range(int(info.get("connected_slaves", 0))))
        return sum(1 for replica in found if isinstance(replica, dict)
                   and replica.get("state") == "online"
                   and int(replica.get("lag", 0)) <= REPLICA_MAX_LAG_SECONDS)

    # -- queueing

    def create(self, new: NewJob, idempotency_key: str | None = None,
               max_active: int = 0) -> Created:
        """Store a queued job (listed as unpublished until `published`): CREATED; REPLAYED with
        the earlier job's id for an Idempotency-Key the owner used already; QUOTA_FULL when the
        owner already has `max_active` unfinished jobs."""
        now = time.time()
        fields = {
            "id": new.id, "status": JobStatus.QUEUED.value, "format": new.format,
            "options": new.options,
            "input_filename": new.input_filename, "input_size": new.input_size,
            "input_sha256": new.input_sha256, "created_at": repr(now),
            "updated_at": repr(now), "request_id": new.request_id or "", "bytes_done": 0,
            "bytes_total": new.input_size, "attempts": 0, "dispatch": new.dispatch,
            "owner": new.owner,
        }
        optional = {"tag": new.tag, "metadata": new.metadata, "webhook_url": new.webhook_url,
                    "input_url": new.input_url}
        fields.update({name: value for name, value in optional.items() if value is not None})
        unfinished_ttl = self.tombstone_ttl  # a job not finished by then is abandoned
        idem_key = keys.idempotency(new.owner, idempotency_key or "")
        job_id = self._create(
            keys=[keys.job(new.id), keys.tombstone(new.id), idem_key, keys.unpublished_jobs(),
                  keys.owner_jobs(new.owner), keys.owner_active(new.owner),
                  keys.active_jobs(), keys.owner_uploads(new.owner)],
            args=[new.id, unfinished_ttl, unfinished_ttl + self.tombstone_ttl,
                  self.result_ttl if idempotency_key else 0, repr(now), new.owner, max_active,
                  *_flatten(fields)],
        )
        if job_id == _QUOTA_FULL:
            return Created(Creation.QUOTA_FULL, None)
        return Created(Creation.CREATED if job_id == new.id else Creation.REPLAYED, job_id)

    def published(self, job_id: str, dispatch: str) -> None:
        """The broker has the message of this dispatch."""
        self._published(keys=[keys.job(job_id), keys.unpublished_jobs()],
                        args=[job_id, dispatch])

    def published_durably(self, job_id: str, dispatch: str) -> None:
        """`published`, then (with `min_replicas`) WAIT on the same connection until that many
        replicas hold everything the primary had done by then: the record, the message (sent
        before it, on the broker's own connection: replication is one ordered stream) and this
        mark. Raises NotReplicated when fewer acknowledged within `replica_timeout_ms`, or when
        the record is not on this primary (a failover between creating and publishing)."""
        if not self.min_replicas:
            self.published(job_id, dispatch)
            return
        with self.redis.pipeline(transaction=False) as pipe:
            self._published(keys=[keys.job(job_id), keys.unpublished_jobs()],
                            args=[job_id, dispatch], client=pipe)
            pipe.wait(self.min_replicas, self.replica_timeout_ms)
            held, acknowledged = pipe.execute()
        if not held or acknowledged < self.min_replicas:
            raise NotReplicated(int(acknowledged) if held else 0, self.min_replicas)

    def forget(self, job_id: str, owner: str, idempotency_key: str | None = None) -> None:
        """Remove a job that was never queued (the broker refused it), and its
        Idempotency-Key, so that a retry creates it afresh."""
        with self.redis.pipeline() as pipe:
            pipe.delete(keys.job(job_id), keys.tombstone(job_id))
            if idempotency_key:
                pipe.delete(keys.idempotency(owner, idempotency_key))
            pipe.zrem(keys.unpublished_jobs(), job_id)
            pipe.zrem(keys.owner_jobs(owner), job_id)
            pipe.zrem(keys.owner_active(owner), job_id)
            pipe.zrem(keys.active_jobs(), job_id)
            pipe.execute()

    def unpublished(self, older_than_seconds: float) -> list[str]:
        """Queued jobs whose message has not been confirmed sent for this long."""
        cutoff = time.time() - older_than_seconds
        return self.redis.zrangebyscore(keys.unpublished_jobs(), "-inf", cutoff)

    def discard(self, job_id: str, owner: str) -> JobStatus | None:
        """Cancel an unfinished job or delete a finished one. Returns the status it had."""
        before = self._discard(keys=self._final_keys(job_id, owner),
                               args=[job_id, repr(time.time()), *self._final_ttls()])
        return JobStatus(before) if before else None

    # -- runs

    def start(self, job_id: str, owner: str, worker: str, dispatch: str | None,
              max_attempts: int, exhausted_error: dict) -> tuple[Claim, str]:
        """Claim a job for a new run: (what the claim found, the new run's id). The run owns
        the job only if `Claim.owns`; EXHAUSTED: the job had been claimed `max_attempts` times
        and was failed with `exhausted_error` instead."""
        run_id = new_token()
        before = self._start(
            keys=self._final_keys(job_id, owner),
            args=[job_id, run_id, repr(time.time()), worker, dispatch or "", max_attempts,
                  json.dumps(exhausted_error), *self._final_ttls()],
        )
        return _CLAIMS.get(before, Claim.FINISHED if before else Claim.GONE), run_id

    def progress(self, job_id: str, run_id: str, bytes_done: int,
                 bytes_total: int, **fields: Any) -> Ownership:
        """Record progress (and `fields` with it) while the run owns the job; else say what it
        found."""
        return _ownership(self._progress(
            keys=[keys.job(job_id), keys.running_jobs()],
            args=[job_id, run_id, repr(time.time()), bytes_done, bytes_total,
                  *_flatten(fields)],
        ))

    def finish(self, job_id: str, owner: str, run_id: str, status: JobStatus,
               **fields: Any) -> Ownership:
        """Move a running job to a final status with `error` or `result`: OWNED if this run
        did, else what it found."""
        if not status.finished:
            raise ValueError(f"not a final status: {status}")
        now = time.time()
        if fields.get("result") is not None:
            fields["result"] = {**fields["result"],
                                "expires_at": utc_timestamp(now + self.result_ttl)}
        values = {"status": status.value, "finished_at": repr(now), "updated_at": repr(now),
                  **{k: v for k, v in fields.items() if v is not None}}
        outcome = self._finish(keys=self._final_keys(job_id, owner),
                               args=[job_id, run_id, *self._final_ttls(), *_flatten(values)])
        return _ownership(outcome)

    def requeue(self, job_id: str, owner: str, run_id: str, dispatch: str, max_attempts: int,
                exhausted_error: dict) -> Requeue:
        """The run `run_id` is lost: queue the job again under `dispatch`, or fail it with
        `exhausted_error` once claimed `max_attempts` times."""
        outcome = self._requeue(
            keys=self._final_keys(job_id, owner),
            args=[job_id, run_id, repr(time.time()), dispatch, max_attempts,
                  json.dumps(exhausted_error), *self._final_ttls()],
        )
        return {_REQUEUED: Requeue.REQUEUED, _FAILED: Requeue.FAILED}.get(outcome,
                                                                          Requeue.MOVED_ON)

    # -- clients' views

    # -- uploads in flight (their quota slots)

    def reserve(self, owner: str, upload_id: str, max_active: int, seconds: int) -> bool:
        """Hold (or refresh) a slot of `owner`'s `max_active` for an upload in flight, for
        `seconds`: True if held, False when unfinished jobs and other uploads fill them."""
        now = time.time()
        return bool(self._reserve(
            keys=[keys.owner_active(owner), keys.owner_uploads(owner)],
            args=[upload_id, repr(now), self.tombstone_ttl, max_active, repr(now + seconds),
                  seconds + 1]))

    def release(self, owner: str, upload_id: str) -> None:
        """Give back the slot of an upload that ended (create() turned it into its job, or it
        failed)."""
        self.redis.zrem(keys.owner_uploads(owner), upload_id)

    def page(self, owner: str, limit: int, after: tuple[float, str] | None = None,
             status: JobStatus | None = None, tag: str | None = None,
             scan_limit: int = 1000) -> tuple[list[Job], tuple[float, str] | None]:
        """`owner`'s jobs, newest first, after the position `after` (creation time, id), that
        match the filters: at most `limit` of them, and the position to continue from (None at
        the end). Jobs created meanwhile sort before `after`, so a walk through the pages
        neither repeats nor skips one. At most `scan_limit` records are read per page: a rare
        filter may give a short page with a position to go on from."""
        key = keys.owner_jobs(owner)
        top = "+inf" if after is None else repr(after[0])
        found: list[Job] = []
        offset, scanned, last = 0, 0, after
        while scanned < scan_limit:
            batch = self.redis.zrevrangebyscore(key, top, "-inf", start=offset,
                                                num=min(100, scan_limit - scanned),
                                                withscores=True)
            if not batch:
                return found, None
            offset += len(batch)
            with self.redis.pipeline(transaction=False) as pipe:
                for job_id, _ in batch:
                    pipe.hgetall(keys.job(job_id))
                records = pipe.execute()
            for (job_id, score), record in zip(batch, records, strict=True):
                if after is not None and (score, job_id) >= after:
                    continue  # at or before the position (ties are ordered by id)
                scanned += 1
                last = (score, job_id)
                if not record:
                    continue  # expired (create() trims the index by age)
                job = Job.from_hash(record)
                if (status is None or job.status == status) and (tag is None or job.tag == tag):
                    found.append(job)
                    if len(found) == limit:
                        return found, last
        return found, last

    def record_webhook(self, job_id: str, delivery: dict[str, Any]) -> None:
        """The state of the job's webhook delivery, shown with the job (while it exists: one
        script, so an expiring job is never brought back as a hash without a TTL)."""
        self._record_webhook(keys=[keys.job(job_id)], args=[json.dumps(delivery)])

    def redispatch(self, job_id: str, dispatch: str, new_dispatch: str) -> bool:
        """A queued job's message of `dispatch` is stranded: queue it under `new_dispatch`
        (listed as unpublished until sent). False when the job is no longer so."""
        return self._redispatch(keys=[keys.job(job_id), keys.unpublished_jobs()],
                                args=[job_id, dispatch, new_dispatch,
                                      repr(time.time())]) == _REQUEUED

    # -- signs of life

    def keep_alive(self, job_ids: Iterable[str]) -> None:
        """A worker still runs these jobs (its heartbeat): their runs are not lost."""
        ids = list(job_ids)
        if ids:
            self.redis.zadd(keys.running_jobs(), dict.fromkeys(ids, time.time()), xx=True)

    def untrack(self, job_id: str) -> None:
        """Drop a job that is neither running nor waiting to be sent from the bookkeeping."""
        with self.redis.pipeline() as pipe:
            pipe.zrem(keys.running_jobs(), job_id)
            pipe.zrem(keys.unpublished_jobs(), job_id)
            pipe.execute()

    def silent_runs(self, idle_seconds: float) -> list[str]:
        """Running jobs with no sign of life for `idle_seconds`."""
        cutoff = time.time() - idle_seconds
        return self.redis.zrangebyscore(keys.running_jobs(), "-inf", cutoff)
