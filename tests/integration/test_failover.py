"""Redis with failover: every process of a stack finds the primary through three Sentinels
(REDIS_SENTINELS); a job answered 202 is on a replica (WAIT) before the answer; the primary is
killed with SIGKILL in the middle of a run of jobs, a Sentinel promotes the replica, and every
accepted job then succeeds, with the right result, within the bound docs/deployment.md states.

A primary, a replica and three Sentinels of its own (testkit/sentinel.py: down-after 1 s,
failover timeout 3 s), the API under gunicorn, two workers and Flower, all given the Sentinels'
addresses and a REDIS_URL whose host is not used.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
import redis
import requests

from jobs import keys
from jobs.queue import QUEUE
from jobs.store import JobStore
from testkit.jobs_api import accepted_job, error_of, submit_file
from testkit.sentinel import Failover
from testkit.stack import Stack
from testkit.waiting import wait_for

STALL_SECONDS = 5
HEARTBEAT_SECONDS = 1
# docs/deployment.md, "Redis with failover": the promotion (down-after 1 s + the Sentinels'
# election), then a lost run requeued (JOB_STALL_SECONDS + WORKER_HEARTBEAT_SECONDS), then the
# run itself (a second or two here) — with room for two loaded cores.
BOUND_SECONDS = 30
FLOWER_AUTH = ("ops", "failover-test-password")


@pytest.fixture(scope="module")
def failover(tmp_path_factory):
    with Failover(tmp_path_factory.mktemp("failover")) as ha:
        yield ha


@pytest.fixture(scope="module")
def ha_stack(failover, tmp_path_factory):
    # No REDIS_URL at all (an empty value: the default): the Sentinels name the primary, and the
    # database is 0 — the first this fresh primary hands out, so the stack's checks read it too.
    with Stack(tmp_path_factory.mktemp("ha-stack"), redis=failover.primary, workers=2,
               flower=True, name="ha",
               env={**failover.env(), "REDIS_URL": "", "JOB_STALL_SECONDS": str(STALL_SECONDS),
                    "WORKER_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
                    "JOB_MAX_ATTEMPTS": "5", "FLOWER_BASIC_AUTH": ":".join(FLOWER_AUTH)}
               ) as stack:
        assert stack.database.index == 0
        stack.db = 0
        yield stack


@pytest.fixture(scope="module")
def two_mb(tmp_path_factory) -> Path:
    from bench.generate import generate

    path = tmp_path_factory.mktemp("two") / "orders.xml"
    generate(2, path)
    return path


def replica_record(failover: Failover, db: int, job_id: str) -> dict:
    host, port = failover.current()
    for server in (failover.primary, failover.replica):
        if server.port != port:
            return redis.Redis("127.0.0.1", server.port, db=db, decode_responses=True,
                               socket_timeout=2).hgetall(keys.job(job_id))
    raise AssertionError("no replica")


def test_a_job_answered_202_is_on_the_replica_already(failover, ha_stack, two_mb, cli_output):
    job = accepted_job(submit_file(ha_stack, two_mb, data={"format": "csv"}))
    # Read at once, before anything could copy it later: WAIT made the answer wait for it.
    assert replica_record(failover, ha_stack.db, job["id"]).get("id") == job["id"]
    done = ha_stack.wait_finished(job["id"], timeout=60)
    assert done["status"] == "succeeded", done
    result = requests.get(ha_stack.url(f"/jobs/{job['id']}/result"), timeout=60)
    assert result.content == cli_output(two_mb, "csv")


def test_without_a_replica_acknowledging_a_job_is_refused_not_accepted(failover, ha_stack,
                                                                        two_mb):
    replica = failover.replica if failover.current()[1] == failover.primary.port else (
        failover.primary)
    replica.signal(signal.SIGSTOP)  # up, but acknowledging nothing
    try:
        started = time.monotonic()
        refused = submit_file(ha_stack, two_mb)
        waited = time.monotonic() - started
    finally:
        replica.signal(signal.SIGCONT)
    error = error_of(refused, 503, "QUEUE_UNAVAILABLE")
    assert int(refused.headers["Retry-After"]) > 0, error
    assert waited < 5, f"the refusal took {waited:.1f} s (REDIS_REPLICA_TIMEOUT_MS is 1 s)"
    # Nothing of it stays behind: no record, no upload.
    client = failover.client(ha_stack.db)
    assert client.zcard(keys.active_jobs()) == 0
    wait_for(lambda: failover.current() is not None, 30, "the Sentinels lost the primary")


def test_with_no_replica_in_step_uploads_are_refused_before_they_are_taken(failover, ha_stack,
                                                                           two_mb):
    """A replica silent for longer than REPLICA_MAX_LAG_SECONDS (INFO replication's lag) could
    not acknowledge a job: POST /jobs and POST /uploads answer 503 before the body is read or a
    part URL is given, not after taking the upload and waiting REDIS_REPLICA_TIMEOUT_MS."""
    primary = failover.current_server()
    replica = failover.other(primary)
    store = JobStore(failover.client(ha_stack.db), min_replicas=1, result_ttl_seconds=60,
                     tombstone_ttl_seconds=60)
    replica.signal(signal.SIGSTOP)
    try:
        wait_for(lambda: store.replicas_in_step() == 0, 30, "the stopped replica stayed in step")
        refused = submit_file(ha_stack, two_mb)
        no_upload = requests.post(ha_stack.url("/uploads"), json={"size_bytes": 1 << 20},
                                  timeout=10)
    finally:
        replica.signal(signal.SIGCONT)
    for answer in (refused, no_upload):
        error_of(answer, 503, "QUEUE_UNAVAILABLE")
        assert int(answer.headers["Retry-After"]) > 0
    assert any("0 of 1 replicas in step" in line for line in ha_stack.api.lines())
    assert failover.client(ha_stack.db).zcard(keys.active_jobs()) == 0
    assert not list((ha_stack.data_dir / "jobs").glob("*/input*"))
    wait_for(lambda: store.replicas_in_step() == 1, 30, "the replica never caught up")
    assert accepted_job(submit_file(ha_stack, two_mb))  # and jobs are taken again


def test_admin_and_flower_find_the_primary_through_the_sentinels(ha_stack):
    made = ha_stack.admin("keys", "create", "through-sentinels")
    assert made.returncode == 0, made.stderr
    workers = requests.get(ha_stack.flower_url + "/api/workers?refresh=1", auth=FLOWER_AUTH,
                           timeout=30)
    assert workers.status_code == 200, workers.text
    assert any(name.startswith("worker-1-ha@") for name in workers.json()), workers.json()


def test_killing_the_primary_loses_no_accepted_job(failover, ha_stack, two_mb, cli_output):
    expected = cli_output(two_mb, "csv")
    accepted: list[tuple[str, float]] = []  # (job id, when it was accepted)
    refused = []
    stop = threading.Event()

    def submit_until_stopped() -> None:
        while not stop.is_set():
            try:
                response = submit_file(ha_stack, two_mb, data={"format": "csv"})
            except requests.RequestException as exc:  # the API's answer lost: not accepted
                refused.append(type(exc).__name__)
                continue
            if response.status_code == 202:
                accepted.append((response.json()["id"], time.monotonic()))
            else:
                error_of(response, 503, "QUEUE_UNAVAILABLE")  # retry later: not accepted
                refused.append(response.status_code)
                time.sleep(0.2)

    client = threading.Thread(target=submit_until_stopped)
    client.start()
    try:
        wait_for(lambda: len(accepted) >= 8, 120, "jobs were not accepted before the fault")
        old_port = failover.current()[1]
        killed = time.monotonic()
        old = failover.primary if old_port == failover.primary.port else failover.replica
        old.kill_all()  # SIGKILL: the primary's host is lost
        promotion = failover.wait_promoted(old_port, timeout=30)
        # The new primary has no replica: nothing is accepted (503, REDIS_MIN_REPLICAS=1) until
        # the lost host is replaced — here it comes back, and a Sentinel makes it a replica.
        time.sleep(2)
        assert not any(at > killed + promotion + 1.5 for _, at in accepted)
        old.start()
        old.wait_ready(15)
        wait_for(lambda: any(at > killed + promotion + 2 for _, at in accepted), 60,
                 "no job was accepted once a replica was back")
    finally:
        stop.set()
        client.join(180)

    durations, attempts = {}, []
    for job_id, at in accepted:
        done = ha_stack.wait_finished(job_id, timeout=BOUND_SECONDS + 60)
        attempts.append(done["attempts"])
        durations[job_id] = time.monotonic() - max(at, killed)
        assert done["status"] == "succeeded", done
        result = requests.get(ha_stack.url(f"/jobs/{job_id}/result"), timeout=60)
        assert result.content == expected, job_id
    longest = max(durations[job_id] for job_id, at in accepted if at < killed)
    print(f"\nfailover: {len(accepted)} accepted ({sum(at < killed for _, at in accepted)} before "
          f"the kill), {len(refused)} refused, promotion {promotion:.1f} s, longest recovery "
          f"{longest:.1f} s, attempts {sorted(attempts)}")
    assert longest < BOUND_SECONDS, f"a job accepted before the kill took {longest:.1f} s"


def test_a_queued_job_whose_message_the_failover_lost_is_queued_again(failover, tmp_path, two_mb,
                                                                       cli_output):
    """Past the submission's WAIT, replication is asynchronous: what the primary did last (a
    requeue's message, or a worker's BRPOP of a message without its `unacked` entry and the
    job's start) may be missing on the replica the Sentinels promote. The replica is made to
    lack an accepted job's message — the state such a loss leaves: the job `queued`, its
    message nowhere — then the primary is killed; a worker's recovery on the new primary
    (jobs/vanished.py) queues the job again within JOB_STALL_SECONDS + WORKER_HEARTBEAT_SECONDS
    of the worker being up."""
    with Stack(tmp_path, failover=failover, workers=0, name="vanished-ha",
               env={"JOB_STALL_SECONDS": str(STALL_SECONDS),
                    "WORKER_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS)}) as stack:
        job = accepted_job(submit_file(stack, two_mb, data={"format": "csv"}))
        primary = failover.current_server()
        replica = redis.Redis("127.0.0.1", failover.other(primary).port, db=stack.database.index)
        replica.config_set("replica-read-only", "no")
        try:  # a write of the replica's own, never sent anywhere
            assert replica.delete(keys.broker_queue(QUEUE)) == 1
        finally:
            replica.config_set("replica-read-only", "yes")

        primary.kill_all()
        failover.wait_promoted(primary.port)
        primary.start()
        primary.wait_ready(15)
        failover.wait_whole()
        store = stack.client()  # the new primary
        assert store.llen(keys.broker_queue(QUEUE)) == 0
        assert store.hget(keys.job(job["id"]), "status") == "queued"

        worker = stack.add_worker()
        ready = time.monotonic()
        done = stack.wait_finished(job["id"], timeout=BOUND_SECONDS + 30)
        took = time.monotonic() - ready
        assert done["status"] == "succeeded", done
        result = requests.get(stack.url(f"/jobs/{job['id']}/result"), timeout=60)
        assert result.content == cli_output(two_mb, "csv")
        assert took < STALL_SECONDS + HEARTBEAT_SECONDS + 10, f"queued again after {took:.1f} s"
        assert any("lost by the broker" in line and job["id"] in line for line in worker.lines())
