"""Gunicorn's error and access logs as JSON lines, through common/logs.py.

Used by gunicorn_config.py as `logger_class`. The access line carries method, path, status,
duration_ms, bytes and the request id the app put on the response.

A query string holds what clients send as parameters (a webhook URL with a token in it,
`metadata`): the access line writes the path and the parameters' *names* only
(`query_parameters`); gunicorn's other lines lose the query string of any URI in them (an error
while handling a request), and the bytes they would quote of a request they could not parse.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qsl

from gunicorn.glogging import Logger

from common.logs import json_handler

MAX_NAMES = 20  # query parameter names an access line lists
MAX_NAME_LENGTH = 64
# A query string inside a logged text: from "?" to the next space or quote.
_QUERY = re.compile(r"\?[^\s'\"]*")


def redacted(text: str) -> str:
    """`text` with every query string (`?` up to a space or quote) replaced by `?…`."""
    return _QUERY.sub("?…", text)


# gunicorn's line for a request it could not parse: "Invalid request from ip=…: <error>", where
# the error quotes what the client sent ("Invalid HTTP Version: 'x HTTP/1.1'").
_INVALID_REQUEST = re.compile(r"(Invalid request from ip=\S*?): (.*)", re.DOTALL)


def client_bytes_dropped(message: str) -> str:
    """gunicorn's message without what a client sent: a refused request keeps its kind (up to
    the quoted bytes), any other line loses its URIs' query strings."""
    refused = _INVALID_REQUEST.fullmatch(message)
    if refused:
        kind = refused[2].split(": ", 1)[0].split(" '", 1)[0].split(' "', 1)[0]
        return f"{refused[1]}: {kind}"
    return redacted(message)


class _NoClientValues(logging.Filter):
    """gunicorn's own lines name requests by their URI (`Error handling request GET /jobs?…`)
    or quote their request line (`Invalid request from ip=…: Invalid HTTP Version: '…'`):
    neither the query string nor the quoted bytes are written."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = client_bytes_dropped(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonLogger(Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
            log.addHandler(json_handler("api"))
            log.propagate = False
        self.error_log.addFilter(_NoClientValues())

    def access(self, resp: Any, req: Any, environ: dict, request_time: Any) -> None:
        if not self.cfg.accesslog:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        request_id = next((value for name, value in resp.headers
                           if name.lower() == "x-request-id"), None)
        path = _text(environ.get("PATH_INFO") or "")
        self.access_log.info(
            "%s %s %s", environ.get("REQUEST_METHOD"), path, status,
            extra={
                "method": environ.get("REQUEST_METHOD"),
                "path": path,
                "query_parameters": query_names(environ.get("QUERY_STRING") or ""),
                "status": int(status),
                "duration_ms": round(request_time.total_seconds() * 1000, 1),
                "bytes": _body_bytes(resp, environ),
                "request_id": request_id,
                "remote_addr": environ.get("REMOTE_ADDR"),
            },
        )


def _text(wsgi: str) -> str:
    """WSGI hands the path and query over as latin-1 text of their UTF-8 bytes."""
    return wsgi.encode("latin-1", "replace").decode("utf-8", "replace")


def query_names(query: str) -> list[str]:
    """The names of the query's parameters, in order, each once (at most MAX_NAMES, each cut to
    MAX_NAME_LENGTH characters): what a request asked for, without what it said."""
    names: dict[str, None] = {}
    for name, _ in parse_qsl(_text(query), keep_blank_values=True):
        names.setdefault(name[:MAX_NAME_LENGTH], None)
        if len(names) == MAX_NAMES:
            break
    return list(names)


def _body_bytes(resp: Any, environ: dict) -> int:
    """Body bytes sent. gunicorn counts what goes through write(), not what sendfile()
    sends (result downloads): for those, the declared Content-Length was sent."""
    sent = getattr(resp, "sent", 0) or 0
    if sent or environ.get("REQUEST_METHOD") == "HEAD":
        return sent
    return getattr(resp, "response_length", None) or 0
