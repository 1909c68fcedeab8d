"""Queued jobs whose message the broker no longer has.

kombu's Redis transport takes a message with BRPOP: from the moment Redis answers until the
worker records the message as unacknowledged, the message is only in that worker's socket. A
worker killed in that window (SIGTERM, then SIGKILL during its soft shutdown, when its main
thread sleeps and reads nothing) takes the message with it: the job stays `queued` with no
message anywhere — `held_conversions` (jobs/queue.py) sees only unacknowledged ones. Found by
`make chaos` (a term-kill-worker fault on an idle worker).

Cheap in the steady state: only when the broker holds fewer conversion messages than there are
queued jobs is each old queued job's message looked for. A received message counts only while
it is its queued job's current dispatch: one whose job went on stays in `unacked` until kombu's
visibility timeout (its worker killed in the run, which was then queued again; or its
acknowledgement lost in a Redis failover) and must not hide a vanished one — `make chaos` lost
a job so, behind 21 such messages. Queueing such a job again is safe even if its message is
merely in flight: the job's new dispatch makes the old message stale.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import redis

from . import keys
from .queue import CONVERT_TASK, QUEUE
from .status import JobStatus


def _conversion(payload: str | bytes | None) -> tuple[str, str] | None:
    """(job id, dispatch) of a kombu message payload of ours, else None."""
    try:
        message = json.loads(payload)  # type: ignore[arg-type]
        if isinstance(message, list):  # the unacked hash holds [message, exchange, key]
            message = message[0]
        if (message.get("headers") or {}).get("task") != CONVERT_TASK:
            return None
        body = message["body"]
        if (message.get("properties") or {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
    except (TypeError, ValueError, KeyError, IndexError, AttributeError):
        return None
    return (args[0], args[1]) if len(args) >= 2 else None


def vanished_conversions(client: redis.Redis, older_than_seconds: float,
                         ) -> Iterator[tuple[str, str]]:
    """(job id, dispatch) of each job queued for `older_than_seconds` whose message is neither
    waiting in the queue nor received by a worker, nor still to be sent (`unpublished`)."""
    with client.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.active_jobs())
        pipe.zcard(keys.running_jobs())
        pipe.llen(keys.broker_queue(QUEUE))
        pipe.hvals(keys.broker_unacked())  # a few a worker, and those left behind
        active, running, waiting, unacked = pipe.execute()
    received = {found for payload in unacked if (found := _conversion(payload))}
    if active - running <= waiting + _queued_by(client, received):
        return  # as many messages as queued jobs (or more): none can be missing
    cutoff = time.time() - older_than_seconds
    candidates = client.zrangebyscore(keys.active_jobs(), "-inf", cutoff)
    if not candidates:
        return
    messages = {found for payload in client.lrange(keys.broker_queue(QUEUE), 0, -1)
                if (found := _conversion(payload))} | received
    with client.pipeline(transaction=False) as pipe:
        for job_id in candidates:
            pipe.hmget(keys.job(job_id), "status", "dispatch", "updated_at")
            pipe.zscore(keys.unpublished_jobs(), job_id)
        answers = pipe.execute()
    for job_id, (status, dispatch, updated_at), unpublished in zip(
            candidates, answers[::2], answers[1::2], strict=True):
        if (status != JobStatus.QUEUED.value or not dispatch or unpublished is not None
                or float(updated_at or 0) > cutoff or (job_id, dispatch) in messages):
            continue
        yield job_id, dispatch


def _queued_by(client: redis.Redis, received: set[tuple[str, str]]) -> int:
    """How many of these received messages are their queued job's current dispatch."""
    if not received:
        return 0
    with client.pipeline(transaction=False) as pipe:
        for job_id, _ in received:
            pipe.hmget(keys.job(job_id), "status", "dispatch")
        answers = pipe.execute()
    return sum(1 for (_, dispatch), (status, current) in zip(received, answers, strict=True)
               if status == JobStatus.QUEUED.value and current == dispatch)
