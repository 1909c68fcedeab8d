"""What a client does with a stack's API: submit, read a job, wait for its end, download, and
the answers' shapes (a job accepted, an error in the envelope)."""

from __future__ import annotations

import requests

from testkit.waiting import wait_for

FINAL = ("succeeded", "failed", "cancelled")


class JobsApi:
    """A stack's URLs and jobs; `headers` carry an API key where keys are on."""

    api_url: str

    def url(self, path: str) -> str:
        return self.api_url + path

    def get_job(self, job_id: str, headers: dict | None = None) -> dict:
        response = requests.get(self.url(f"/jobs/{job_id}"), headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_finished(self, job_id: str, headers: dict | None = None,
                      timeout: float = 60) -> dict:
        return wait_for(lambda: (job := self.get_job(job_id, headers))["status"] in FINAL
                        and job, timeout, f"job {job_id} did not finish", interval=0.1)


def submit_file(stack: JobsApi, path, *, filename=None, data=None, params=None, headers=None):
    with open(path, "rb") as handle:
        return requests.post(stack.url("/jobs"), files={"file": (filename or path.name, handle)},
                             data=data or {}, params=params, headers=headers, timeout=120)


def submit_raw(stack: JobsApi, path, *, params=None, headers=None):
    with open(path, "rb") as handle:
        return requests.post(stack.url("/jobs"), data=handle, params=params, timeout=120,
                             headers={"Content-Type": "application/xml", **(headers or {})})


def accepted_job(response) -> dict:
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["Location"] == f"/jobs/{job['id']}"
    assert int(response.headers["Retry-After"]) > 0
    assert job["status"] == "queued"
    assert job["links"] == {"self": f"/jobs/{job['id']}", "result": f"/jobs/{job['id']}/result"}
    return job


def download(stack: JobsApi, job_id: str) -> requests.Response:
    response = requests.get(stack.url(f"/jobs/{job_id}/result"), timeout=60)
    assert response.status_code == 200, response.text
    return response


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    assert "Traceback" not in response.text and "/work" not in response.text
    return body["error"]
