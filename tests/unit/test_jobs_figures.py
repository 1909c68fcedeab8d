"""The job figures (jobs/figures.py) and their collector (api/metrics.py) against a
real redis-server: jobs submitted through the lifecycle, queued to Redis as Celery messages, run
in this process by the worker's own runner (the real converter), cancelled, lost; workers'
workers. Then the figures, as Prometheus reads them, checked by promtool."""

from __future__ import annotations

import hashlib
import subprocess
import time
import uuid

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from redis.backoff import NoBackoff
from redis.retry import Retry

from api.metrics import JobFiguresCollector
from common.settings import load_settings
from jobs import figures, keys, open_service, workers
from jobs.queue import QUEUE, make_celery
from jobs.store import Job, NewJob
from testkit.waiting import free_port
from worker.runner import TaskFailed, run_job

GOOD = b"<orders>" + b"<order><id>1</id><total>9.5</total></order>" * 50 + b"</orders>"
BAD = b"<root>\n  <a>one</b>\n</root>\n"


@pytest.fixture
def client(redis_db):
    client = redis_db.client()
    client.flushdb()
    return client


@pytest.fixture
def lifecycle(redis_db, client, tmp_path):
    settings = load_settings({"DEPLOY_ENV": "development", "REDIS_URL": redis_db.url,
                              "DATA_DIR": str(tmp_path), "JOB_MAX_ATTEMPTS": "1"})
    return open_service(settings, make_celery(settings, "metrics-test")).lifecycle


def submit(lifecycle, fmt: str, doc: bytes = GOOD) -> Job:
    job_id = str(uuid.uuid4())

    def receive(storage) -> NewJob:
        size = storage.save_input(job_id, [doc])
        return NewJob(id=job_id, format=fmt, options={}, input_filename="a.xml",
                      input_size=size, input_sha256=hashlib.sha256(doc).hexdigest())

    return lifecycle.submit(job_id, receive).job


def exposition(client: redis.Redis) -> str:
    registry = CollectorRegistry()
    registry.register(JobFiguresCollector(figures.JobFigures(client)))
    return generate_latest(registry).decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_a_jobs_life_shows_in_the_figures(lifecycle, client):
    good, bad = submit(lifecycle, "csv"), submit(lifecycle, "json", BAD)
    cancelled, waiting = submit(lifecycle, "yaml"), submit(lifecycle, "csv")
    lost = submit(lifecycle, "text")
    before = figures.snapshot(client)
    assert before.submitted == {"csv": 2, "json": 1, "yaml": 1, "text": 1}
    assert (before.queued, before.running, before.finished) == (5, 0, {})
    assert before.queue_messages == {QUEUE: 5, "xmlconv.webhooks": 0}  # real Celery messages

    run_job(lifecycle, good.id, good.dispatch, "w1")
    with pytest.raises(TaskFailed):
        run_job(lifecycle, bad.id, bad.dispatch, "w1")
    lifecycle.cancel_or_delete(cancelled.id, "")
    assert lifecycle.claim(lost.id, lost.dispatch, "w2") is not None
    assert figures.snapshot(client).running == 1
    # Its message again, after its one attempt (JOB_MAX_ATTEMPTS=1): failed, WORKER_LOST.
    assert lifecycle.claim(lost.id, lost.dispatch, "w3") is None
    workers.beat(client, "w1@host", 30, {"concurrency": 3})
    workers.beat(client, "w2@host", 30, {"concurrency": 2})

    after = figures.snapshot(client)
    assert after.finished == {("csv", "succeeded", ""): 1,
                              ("json", "failed", "XML_PARSE_ERROR"): 1,
                              ("yaml", "cancelled", ""): 1,
                              ("text", "failed", "WORKER_LOST"): 1}
    assert after.submitted == before.submitted
    assert (after.queued, after.running) == (1, 0)
    assert lifecycle._store.get(waiting.id).status == "queued"  # the one no worker took
    assert (after.workers, after.worker_processes) == (2, 5)
    # Only successes are timed and weighed.
    assert set(after.duration) == set(after.input_bytes) == {"csv"}
    assert after.input_bytes["csv"].buckets[-1] == ("+Inf", 1)
    assert after.input_bytes["csv"].sum == len(GOOD)
    assert after.duration["csv"].buckets[-1] == ("+Inf", 1)
    assert 0 < after.duration["csv"].sum < 30


def test_histograms_accumulate_buckets_and_sum(client):
    now = time.time()
    for seconds, size in ((0.05, 1000), (3.0, 5_000_000), (4.0, 6_000_000), (7200, 10**9)):
        job = Job(id=str(uuid.uuid4()), status="running", format="json", options={},
                  input_filename="a.xml", input_size=size, input_sha256="", created_at=now,
                  started_at=now - seconds)
        figures.record_finished(client, job, "succeeded", None, now)
    found = figures.snapshot(client)
    duration = dict(found.duration["json"].buckets)
    assert (duration["0.1"], duration["2.5"], duration["5.0"], duration["1800.0"]) == (1, 1, 3, 3)
    assert duration["+Inf"] == 4 and found.duration["json"].sum == pytest.approx(7207.05)
    sizes = dict(found.input_bytes["json"].buckets)
    assert (sizes["16384.0"], sizes["4194304.0"], sizes["16777216.0"]) == (1, 1, 3)
    assert sizes["314572800.0"] == 3 and sizes["+Inf"] == 4  # 1 GB: beyond the last bound
    assert found.finished == {("json", "succeeded", ""): 4}


def test_the_figures_are_prometheus_text_that_promtool_accepts(lifecycle, client):
    good = submit(lifecycle, "jsonl")
    run_job(lifecycle, good.id, good.dispatch, "w1")
    submit(lifecycle, "csv")
    workers.beat(client, "w1@host", 30, {"concurrency": 4})
    text = exposition(client)
    found = samples(text)
    assert found[("xmlconv_job_store_up", ())] == 1
    assert found[("xmlconv_jobs_submitted_total", (("format", "jsonl"),))] == 1
    assert found[("xmlconv_jobs_finished_total", (("error_code", ""), ("format", "jsonl"),
                                                  ("status", "succeeded")))] == 1
    assert found[("xmlconv_conversion_input_bytes_sum", (("format", "jsonl"),))] == len(GOOD)
    assert found[("xmlconv_conversion_duration_seconds_count", (("format", "jsonl"),))] == 1
    assert found[("xmlconv_jobs_unfinished", (("status", "queued"),))] == 1
    assert found[("xmlconv_queue_messages", (("queue", QUEUE),))] == 2
    assert found[("xmlconv_workers", ())] == 1 and found[("xmlconv_worker_processes", ())] == 4
    assert good.id not in text  # aggregates only
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                             capture_output=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_without_redis_the_scrape_says_so_and_carries_no_job_figures():
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    found = samples(exposition(dead))
    assert found == {("xmlconv_job_store_up", ()): 0}


def test_the_active_set_is_the_unfinished_jobs(lifecycle, client):
    """Every final transition takes a job out of `active`: cancelled while queued or running,
    finished by its run, failed when lost; and a job forgotten (the broker refused it)."""
    jobs = [submit(lifecycle, "json") for _ in range(4)]
    assert client.zcard(keys.active_jobs()) == 4
    run_job(lifecycle, jobs[0].id, jobs[0].dispatch, "w1")
    lifecycle.cancel_or_delete(jobs[1].id, "")
    run = lifecycle.claim(jobs[2].id, jobs[2].dispatch, "w1")
    lifecycle.cancel_or_delete(jobs[2].id, "")
    assert run is not None and not run.succeed({"size_bytes": 0})  # cancelled meanwhile
    lifecycle._store.forget(jobs[3].id, "")
    assert client.zcard(keys.active_jobs()) == 0
    assert figures.snapshot(client).finished == {("json", "succeeded", ""): 1,
                                                 ("json", "cancelled", ""): 2}
