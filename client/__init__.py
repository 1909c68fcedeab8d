"""A Python client for the its-convert-xml HTTP API (docs/client.md), and the `xmlconv`
commands that use it (client/cli.py).

    from client import Client, ApiError, JobFailed

    with Client("http://127.0.0.1:8000", api_key=None) as api:
        job = api.convert("orders.xml", "orders.csv", format="csv",
                          options={"namespaces": "strip"})

Needs only `requests` (and `tqdm` for the CLI's progress bars): no Flask, Celery, Redis, lxml
nor the converter.
"""

from __future__ import annotations

from .api import DEFAULT_URL, Client, job_id_of
from .errors import ApiError, JobFailed, ServerUnreachable
from .retry import parse_retry_after

__all__ = [
    "DEFAULT_URL",
    "ApiError",
    "Client",
    "JobFailed",
    "ServerUnreachable",
    "job_id_of",
    "parse_retry_after",
]
