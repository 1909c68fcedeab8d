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

import importlib
from typing import TYPE_CHECKING, Any

# Each name's module, imported when the name is first used: `xmlconv convert` (client/main.py)
# passes through this package and must not pay for requests (~70 ms of CPU at every start).
_HOMES = {"DEFAULT_URL": ".api", "Client": ".api", "job_id_of": ".api",
          "ApiError": ".errors", "JobFailed": ".errors", "ServerUnreachable": ".errors",
          "parse_retry_after": ".retry"}

__all__ = ["DEFAULT_URL", "ApiError", "Client", "JobFailed", "ServerUnreachable", "job_id_of",
           "parse_retry_after"]

if TYPE_CHECKING:
    from .api import DEFAULT_URL, Client, job_id_of
    from .errors import ApiError, JobFailed, ServerUnreachable
    from .retry import parse_retry_after


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home, __name__), name)
