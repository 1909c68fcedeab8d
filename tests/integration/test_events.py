"""GET /jobs/<id>/events on real processes (gunicorn + gevent, a Celery worker, redis-server):
a job's changes arrive in order with ids, a stream resumes with Last-Event-ID and ends at the
final status, another key sees nothing, the stream outlives a Redis restart, and one API
process holds hundreds of streams over one Redis subscription."""

from __future__ import annotations

import contextlib
import io
import json
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests

from jobs.events import CLIENT_NAME
from testkit.jobs_api import accepted_job, error_of, submit_raw
from testkit.stack import Stack
from testkit.throttle import Throttle
from testkit.waiting import wait_for

FINAL = ("succeeded", "failed", "cancelled")


# -- a reader of the stream, written from the spec (not the client's)


def read_events(response: requests.Response, *, stop_after: int | None = None):
    """The stream's events ({"id", "event", "data"}) and comments ({"comment"}), as they come."""
    event: dict = {}
    count = 0
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            if event:
                if "data" in event:
                    event["data"] = json.loads(event["data"])
                yield event
                count += 1
                if stop_after is not None and count >= stop_after:
                    return
                event = {}
            continue
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
            continue
        name, _, value = line.partition(":")
        event[name] = value[1:] if value.startswith(" ") else value


def open_stream(url: str, job_id: str, headers: dict, last_id: str | None = None,
                timeout: float = 30) -> requests.Response:
    extra = {"Last-Event-ID": last_id} if last_id is not None else {}
    return requests.get(f"{url}/jobs/{job_id}/events", stream=True, timeout=(5, timeout),
                        headers={"Accept": "text/event-stream", **headers, **extra})


def job_events(items) -> list[dict]:
    return [item for item in items if item.get("event") == "job"]


# -- stacks


@pytest.fixture(scope="module")
def live(redis_server, tmp_path_factory):
    """API keys on, one worker: jobs that run."""
    with Stack(tmp_path_factory.mktemp("events"), redis=redis_server, keys=True, name="events",
               env={"RATE_LIMIT_PER_MINUTE": "100000", "MAX_ACTIVE_JOBS": "100",
                    "EVENTS_HEARTBEAT_SECONDS": "1"}) as stack:
        yield stack


@pytest.fixture(scope="module")
def quiet(redis_server, tmp_path_factory):
    """API keys on, no worker: jobs stay queued until cancelled; one API process."""
    with Stack(tmp_path_factory.mktemp("quiet"), redis=redis_server, keys=True, workers=0,
               name="quiet", env={"RATE_LIMIT_PER_MINUTE": "100000", "MAX_ACTIVE_JOBS": "1000",
                                  "EVENTS_MAX_PER_KEY": "1000", "EVENTS_HEARTBEAT_SECONDS": "1",
                                  "API_WORKERS": "1"}) as stack:
        yield stack


@pytest.fixture(scope="module")
def medium(samples) -> Path:
    """64 MB: converts in under a second at full speed (a test that follows its progress slows
    its worker down with `throttled`)."""
    return samples["big"]


@pytest.fixture
def throttled(live):
    """The live stack's worker runs a tenth of the time: the 64 MB job converts for seconds, so
    several progress steps (two a second) are written."""
    with Throttle(live.worker):
        yield


TINY = b"<root><a>1</a></root>"


def submit_tiny(stack: Stack, headers: dict) -> dict:
    response = requests.post(stack.url("/jobs"), data=TINY, timeout=30,
                             headers={"Content-Type": "application/xml", **headers})
    return accepted_job(response)


# -- the stream of a job


@pytest.mark.usefixtures("throttled")
def test_a_jobs_changes_arrive_in_order_with_ids_and_the_stream_ends_at_its_end(live, medium):
    key = live.key("watcher")
    job = accepted_job(submit_raw(live, medium, headers=key["headers"]))
    started = time.monotonic()
    with open_stream(live.api_url, job["id"], key["headers"]) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-store"
        items = list(read_events(response))  # ends by itself: the server closes the stream
    assert time.monotonic() - started < 60
    events = job_events(items)
    ids = [int(event["id"]) for event in events]
    assert ids == sorted(set(ids)), ids  # strictly increasing
    statuses = [event["data"]["status"] for event in events]
    assert statuses[-1] == "succeeded" and statuses.count("succeeded") == 1
    assert statuses[0] in ("queued", "running")
    order = {"queued": 0, "running": 1, "succeeded": 2}
    assert [order[s] for s in statuses] == sorted(order[s] for s in statuses)
    done = [event["data"]["progress"]["bytes_done"] for event in events
            if event["data"]["status"] == "running"]
    total = events[-1]["data"]["progress"]["bytes_total"]
    # Progress steps as they were written, mid-way.
    assert [d for d in done if 0 < d < total], done
    assert done == sorted(done)
    # The last event is the job as GET /jobs/<id> shows it, and nothing follows it.
    assert events[-1]["data"] == live.get_job(job["id"], key["headers"])
    assert items[-1] is events[-1] or "comment" in items[-1]
    # No more than a few a second (the worker writes progress at most twice a second).
    assert len(events) <= 4 * (time.monotonic() - started) + 4


def test_a_stream_resumes_after_the_last_event_id(live, medium):
    key = live.key("resumer")
    job = accepted_job(submit_raw(live, medium, headers=key["headers"]))
    with open_stream(live.api_url, job["id"], key["headers"]) as response:
        first = job_events(read_events(response, stop_after=2))
    last_id = first[-1]["id"]
    with open_stream(live.api_url, job["id"], key["headers"], last_id=last_id) as response:
        rest = job_events(read_events(response))
    assert rest, "nothing after the resumption"
    assert int(rest[0]["id"]) > int(last_id)
    assert rest[-1]["data"]["status"] == "succeeded"
    # Resumed at the final event: nothing more to say (204, where EventSource stops).
    again = open_stream(live.api_url, job["id"], key["headers"], last_id=rest[-1]["id"])
    assert again.status_code == 204 and again.content == b""
    # Without Last-Event-ID, a finished job's stream is its final event alone.
    with open_stream(live.api_url, job["id"], key["headers"]) as response:
        only = list(read_events(response))
    assert [e.get("id") for e in job_events(only)] == [rest[-1]["id"]]


def test_streams_are_sealed_like_the_job(live):
    owner, other = live.key("stream-owner"), live.key("stream-other")
    job = submit_tiny(live, owner["headers"])
    error_of(open_stream(live.api_url, job["id"], other["headers"]), 404, "JOB_NOT_FOUND")
    error_of(open_stream(live.api_url, job["id"], {}), 401, "UNAUTHENTICATED")
    error_of(open_stream(live.api_url, "4a1c3e3e-1b6e-4f0e-9a43-5b2f0b8f2d11",
                         owner["headers"]), 404, "JOB_NOT_FOUND")
    error = error_of(open_stream(live.api_url, job["id"], owner["headers"], last_id="x1"),
                     400, "INVALID_REQUEST")
    assert error["details"] == {"parameter": "Last-Event-ID"}


# -- what a stream may hold


def test_a_quiet_stream_gets_heartbeats_and_ends_at_its_maximum_time(quiet):
    key = quiet.key("patient")
    job = submit_tiny(quiet, key["headers"])
    with quiet.another_api("api-short", EVENTS_MAX_SECONDS="5") as url:
        started = time.monotonic()
        with open_stream(url, job["id"], key["headers"]) as response:
            items = list(read_events(response))
        took = time.monotonic() - started
    assert 4.5 < took < 9, took
    assert [e["data"]["status"] for e in job_events(items)] == ["queued"]
    comments = [item["comment"] for item in items if "comment" in item]
    assert comments.count("keep-alive") >= 3
    assert "reconnect with Last-Event-ID" in comments[-1]


def test_streams_per_key_and_per_process_are_capped(quiet):
    first, second = quiet.key("greedy"), quiet.key("modest")
    job = submit_tiny(quiet, first["headers"])
    other_job = submit_tiny(quiet, second["headers"])
    with quiet.another_api("api-capped", EVENTS_MAX_STREAMS="3", EVENTS_MAX_PER_KEY="2") as url, \
            contextlib.ExitStack() as held:
        for _ in range(2):
            response = held.enter_context(open_stream(url, job["id"], first["headers"]))
            assert response.status_code == 200
        error = error_of(open_stream(url, job["id"], first["headers"]), 429,
                         "TOO_MANY_STREAMS")
        assert error["details"] == {"max_streams_per_key": 2}
        held.enter_context(open_stream(url, other_job["id"], second["headers"]))
        refused = open_stream(url, other_job["id"], second["headers"])
        error = error_of(refused, 503, "STREAMS_BUSY")
        assert int(refused.headers["Retry-After"]) > 0
        held.close()  # the streams end: their slots come back
        wait_for(lambda: open_stream(url, job["id"], first["headers"]).status_code == 200, 10,
                 "the slots of closed streams never came back")


def test_one_api_process_holds_200_streams_over_one_subscription(quiet):
    key = quiet.key("crowd")
    jobs = [submit_tiny(quiet, key["headers"]) for _ in range(20)]
    api = psutil.Process(quiet.api_worker_pid())
    rss_before = api.memory_info().rss
    cpu_before = sum(api.cpu_times()[:2])
    streams = 200
    results: dict[int, list] = {}
    arrived: dict[int, float] = {}
    cancelled: dict[str, float] = {}
    opened = threading.Barrier(streams + 1)

    def watch(n: int) -> None:
        job_id = jobs[n % len(jobs)]["id"]
        with open_stream(quiet.api_url, job_id, key["headers"], timeout=60) as response:
            assert response.status_code == 200
            events = read_events(response)
            got = [next(e for e in events if e.get("event") == "job")]
            opened.wait(60)
            for event in events:
                if event.get("event") == "job":
                    got.append(event)
                    arrived[n] = time.monotonic()
            results[n] = got

    threads = [threading.Thread(target=watch, args=(n,), daemon=True) for n in range(streams)]
    for thread in threads:
        thread.start()
    opened.wait(60)
    rss_held = api.memory_info().rss
    subscriptions = [c for c in quiet.client().client_list()
                     if c.get("name") == CLIENT_NAME and c.get("db") == str(quiet.database.index)]
    assert len(subscriptions) == 1, subscriptions  # one Redis connection for 200 streams
    assert subscriptions[0]["psub"] == "1"
    # The process still answers at once: the streams wait, and so does the subscription's
    # reader (gevent-patched: a read that blocked the process would hold each request up to
    # the listener's 1 s wait).
    answers = []
    for _ in range(20):
        sent = time.monotonic()
        assert requests.get(quiet.url("/health"), timeout=5).status_code == 200
        answers.append(time.monotonic() - sent)
    assert sorted(answers)[10] < 0.25, answers
    cancelled_at = time.monotonic()
    for job in jobs:  # every job changes: each stream gets its final event and ends
        cancelled[job["id"]] = time.monotonic()  # the change is written within the DELETE
        assert requests.delete(quiet.url(f"/jobs/{job['id']}"), headers=key["headers"],
                               timeout=10).status_code == 202
    for thread in threads:
        thread.join(30)
    ended = time.monotonic() - cancelled_at
    assert len(results) == streams
    for got in results.values():
        assert [e["data"]["status"] for e in got] == ["queued", "cancelled"]
        assert int(got[1]["id"]) > int(got[0]["id"])
    cpu = sum(api.cpu_times()[:2]) - cpu_before
    delays = sorted(arrived[n] - cancelled[jobs[n % len(jobs)]["id"]] for n in arrived)
    p50, p99 = delays[len(delays) // 2], delays[int(len(delays) * 0.99) - 1]
    print(f"\n200 streams: +{(rss_held - rss_before) / 2**20:.1f} MiB RSS held, "
          f"{cpu:.2f} s API CPU for 200 connections and 400 events, all ended {ended:.2f} s "
          f"after the cancels began; final event after its DELETE was sent: p50 "
          f"{p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms; /health meanwhile: median "
          f"{sorted(answers)[10] * 1000:.1f} ms, max {max(answers) * 1000:.1f} ms")
    assert p99 < 1.0
    assert rss_held - rss_before < 100 * 2**20


# -- Redis restarted under a stream


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("events-redis"), name="events-redis",
               env={"EVENTS_HEARTBEAT_SECONDS": "1", "JOB_STALL_SECONDS": "5",
                    "WORKER_HEARTBEAT_SECONDS": "1"}) as stack:
        yield stack


def test_a_stream_survives_a_redis_restart(own_redis, medium):
    with Throttle(own_redis.worker):  # the job runs through the outage
        stream_through_a_redis_restart(own_redis, medium)


def stream_through_a_redis_restart(own_redis, medium):
    job = accepted_job(submit_raw(own_redis, medium))
    items: list[dict] = []
    with open_stream(own_redis.api_url, job["id"], {}, timeout=60) as response:
        events = read_events(response)
        for item in events:
            items.append(item)
            if item.get("event") == "job" and item["data"]["status"] == "running":
                break
        own_redis.redis.signal(signal.SIGTERM)
        assert own_redis.redis.wait_exit(20)
        time.sleep(1)
        own_redis.redis.start()
        own_redis.redis.wait_ready(15)
        restarted = len(items)
        items.extend(events)
    after = job_events(items[restarted:])
    assert after, "no event after Redis came back"
    assert after[-1]["data"]["status"] == "succeeded"
    ids = [int(e["id"]) for e in job_events(items)]
    assert ids == sorted(set(ids))
    assert any(item.get("comment") == "keep-alive" for item in items[restarted:])


# -- the Python client's wait (and so the CLI's progress bar)


def access_paths(stack: Stack, name: str = "api") -> list[str]:
    text = (stack.logs_dir / f"{name}.log").read_text(encoding="utf-8", errors="replace")
    lines = [json.loads(line) for line in text.split("\n") if line.startswith("{")]
    return [line["path"] for line in lines if "path" in line and "status" in line]


@pytest.mark.usefixtures("throttled")
def test_the_clients_wait_follows_the_stream(live, medium):
    from client import Client

    key = live.key("client-streams")
    percents: list[float] = []
    with Client(live.api_url, api_key=key["api_key"]) as api:
        job = api.submit(medium)
        done = api.wait(job, timeout=60, progress=lambda p, total: percents.append(p))
    assert done["status"] == "succeeded"
    paths = wait_for(lambda: (found := access_paths(live)) and
                     f"/jobs/{job['id']}/events" in found and found, 10,
                     "the stream is not in the access log")
    assert f"/jobs/{job['id']}" not in paths  # pushed, not polled
    assert percents[-1] == 100.0 and len(set(percents)) >= 3, percents


def test_the_client_polls_where_streams_are_refused(live):
    from client import Client

    key = live.key("client-polls")
    with live.another_api("api-nostreams", EVENTS_MAX_STREAMS="0") as url, \
            Client(url, api_key=key["api_key"]) as api:
        job = api.submit(io.BytesIO(TINY), filename="tiny.xml")
        assert api.wait(job, timeout=60)["status"] == "succeeded"
        paths = wait_for(lambda: (found := access_paths(live, "api-nostreams")) and
                         f"/jobs/{job['id']}" in found and found, 10, "no poll logged")
    assert paths.count(f"/jobs/{job['id']}/events") == 1  # refused once (503), then polled
    assert f"/jobs/{job['id']}" in paths


def test_a_stopping_api_ends_its_streams_at_once(quiet):
    """SIGTERM (a rolling restart): the streams end with a comment at once, and the process
    exits without waiting out API_GRACEFUL_TIMEOUT for them."""
    key = quiet.key("restarting")
    job = submit_tiny(quiet, key["headers"])
    service, port = quiet._api("api-stopping", API_GRACEFUL_TIMEOUT="30")
    try:
        service.start()
        service.wait_ready(90)
        response = open_stream(f"http://127.0.0.1:{port}", job["id"], key["headers"])
        items = read_events(response)
        assert next(e for e in items if "event" in e)["data"]["status"] == "queued"
        stopping = time.monotonic()
        service.signal(signal.SIGTERM)
        rest = list(items)  # the server ends the stream
        ended = time.monotonic() - stopping
        assert service.wait_exit(20)
        exited = time.monotonic() - stopping
    finally:
        service.close()
    assert "shutting down" in rest[-1]["comment"], rest
    assert ended < 3 and exited < 10, (ended, exited)  # not API_GRACEFUL_TIMEOUT (30 s)
