"""A job that outlives JOB_SOFT_TIME_LIMIT fails with TIME_LIMIT_EXCEEDED. A stack of its own:
one worker with a one-second limit on a database of its own, with the API in-process (Flask's
test client against the same real Redis)."""

from __future__ import annotations

import json

from api import create_app
from common.settings import load_settings
from testkit.stack import Stack
from testkit.waiting import wait_for


def test_soft_time_limit_fails_the_job_and_the_worker_shuts_down_in_json(
        redis_server, tmp_path, samples):
    with Stack(tmp_path, redis=redis_server, api=False, name="limited",
               env={"JOB_SOFT_TIME_LIMIT": "1", "JOB_TIME_LIMIT": "30"}) as stack:
        client = create_app(load_settings(stack.env)).test_client()
        response = client.post("/jobs?format=json", data=samples["big"].read_bytes(),
                               content_type="application/xml")
        assert response.status_code == 202, response.get_json()
        job_id = response.get_json()["id"]
        job = wait_for(lambda: (j := client.get(f"/jobs/{job_id}").get_json())["status"] in (
            "succeeded", "failed") and j, 60, "the limited job did not finish", interval=0.1)
        assert job["status"] == "failed"
        assert job["error"]["code"] == "TIME_LIMIT_EXCEEDED"
        assert not list((stack.data_dir / "jobs" / job_id).glob("result.*"))
    for line in stack.worker.lines():  # shutdown notices included
        assert json.loads(line)["service"] == "worker"
