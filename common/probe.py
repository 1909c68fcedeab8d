"""The HTTP half of the container health checks, without curl in the images: GET a URL, print
one JSON line saying how it went, exit 0 on a 200 answer and 1 otherwise. Each process's own
health module builds the URL from the settings the process itself reads (`python -m api.health`,
`python -m worker.flower --probe`), so a changed port needs no second edit.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from .logs import json_line

TIMEOUT_SECONDS = 5
_ANY_ADDRESS = {"", "0.0.0.0", "::", "[::]", "*"}


def local_host(host: str) -> str:
    """Where to reach a server bound to `host` from inside its own container."""
    return "127.0.0.1" if host in _ANY_ADDRESS else host


def http_probe(service: str, logger: str, url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        status, error = None, type(exc).__name__
    ok = status == 200
    fields = {"url": url, "status": status} if status else {"url": url, "error": error}
    print(json_line(f"{service}-health", "INFO" if ok else "ERROR", logger,
                    "healthy" if ok else "unhealthy", **fields), flush=True)
    return 0 if ok else 1
