"""Gunicorn's error and access logs as JSON lines, through common/logs.py.

Used by gunicorn_config.py as `logger_class`. The access line carries method, path, status,
duration_ms, bytes and the request id the app put on the response.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from common.logs import json_handler


class JsonLogger(Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
            log.addHandler(json_handler("api"))
            log.propagate = False

    def access(self, resp: Any, req: Any, environ: dict, request_time: Any) -> None:
        if not self.cfg.accesslog:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        request_id = next((value for name, value in resp.headers
                           if name.lower() == "x-request-id"), None)
        self.access_log.info(
            "%s %s %s", environ.get("REQUEST_METHOD"), environ.get("RAW_URI"), status,
            extra={
                "method": environ.get("REQUEST_METHOD"),
                # WSGI hands the path over as latin-1 text of its UTF-8 bytes.
                "path": (environ.get("PATH_INFO") or "").encode("latin-1", "replace").decode(
                    "utf-8", "replace"),
                "status": int(status),
                "duration_ms": round(request_time.total_seconds() * 1000, 1),
                "bytes": _body_bytes(resp, environ),
                "request_id": request_id,
                "remote_addr": environ.get("REMOTE_ADDR"),
            },
        )


def _body_bytes(resp: Any, environ: dict) -> int:
    """Body bytes sent. gunicorn counts what goes through write(), not what sendfile()
    sends (result downloads): for those, the declared Content-Length was sent."""
    sent = getattr(resp, "sent", 0) or 0
    if sent or environ.get("REQUEST_METHOD") == "HEAD":
        return sent
    return getattr(resp, "response_length", None) or 0
