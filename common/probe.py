"""Container health checks over HTTP, without curl in the image:

    python -m common.probe api       GET /health/ready on API_BIND's port
    python -m common.probe flower    GET /healthcheck on FLOWER_PORT (needs no credentials)

The address comes from the same settings the process itself reads, so a changed port needs no
second edit. Exits 0 on a 200 answer, 1 otherwise, with one JSON line saying which.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from .logs import json_line
from .settings import Settings, settings_or_exit

TIMEOUT_SECONDS = 5
_ANY_ADDRESS = {"", "0.0.0.0", "::", "[::]", "*"}


def _local(host: str) -> str:
    """Where to reach a server bound to `host` from inside its own container."""
    return "127.0.0.1" if host in _ANY_ADDRESS else host


def target_url(service: str, settings: Settings) -> str:
    if service == "api":
        host, _, port = settings.api_bind.rpartition(":")
        if settings.api_bind.startswith("unix:"):
            raise SystemExit("common.probe: API_BIND is a unix socket; probe it another way")
        return f"http://{_local(host)}:{port}/health/ready"
    if service == "flower":
        return f"http://{_local(settings.flower_address)}:{settings.flower_port}/healthcheck"
    raise SystemExit(f"common.probe: unknown service {service!r} (api or flower)")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m common.probe api|flower")
    service = args[0]
    url = target_url(service, settings_or_exit(f"{service}-health"))
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        status, error = None, type(exc).__name__
    ok = status == 200
    fields = {"url": url, "status": status} if status else {"url": url, "error": error}
    print(json_line(f"{service}-health", "INFO" if ok else "ERROR", "common.probe",
                    "healthy" if ok else "unhealthy", **fields), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
