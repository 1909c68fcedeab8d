"""A job that outlives JOB_SOFT_TIME_LIMIT fails with TIME_LIMIT_EXCEEDED. Runs its own worker
with a one-second limit on another Redis database, with the API in-process (Flask's test
client against the same real Redis)."""

from __future__ import annotations

import json

from servicekit import service_env, start_worker, wait_for

from api import create_app
from common.settings import load_settings


def test_soft_time_limit_fails_the_job_and_the_worker_shuts_down_in_json(
        redis_server, tmp_path, samples):
    env = service_env(redis_server.url(1), tmp_path / "data", JOB_SOFT_TIME_LIMIT="1",
                      JOB_TIME_LIMIT="30")
    worker = start_worker(env, tmp_path / "limited-worker.log", name="limited")
    try:
        client = create_app(load_settings(env)).test_client()
        response = client.post("/jobs?format=json", data=samples["big"].read_bytes(),
                               content_type="application/xml")
        assert response.status_code == 202, response.get_json()
        job_id = response.get_json()["id"]
        job = wait_for(lambda: (j := client.get(f"/jobs/{job_id}").get_json())["status"] in (
            "succeeded", "failed") and j, 60, "the limited job did not finish", interval=0.1)
        assert job["status"] == "failed"
        assert job["error"]["code"] == "TIME_LIMIT_EXCEEDED"
        assert not list((tmp_path / "data" / "jobs" / job_id).glob("result.*"))
    finally:
        worker.stop()
    for line in worker.lines():  # shutdown notices included
        assert json.loads(line)["service"] == "worker"
