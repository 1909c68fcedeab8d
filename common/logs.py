"""JSON logging for every process: one object per line on stdout.

Each line carries `timestamp` (ISO 8601, UTC), `level`, `logger`, `message`, `service`, and the
`request_id` / `job_id` of the work in hand, taken from context variables so that code deep in a
call chain need not pass them around. When traces are on (common/tracing.py), a line written
inside a span also carries that span's `trace_id` and `span_id` (hex, as trace viewers show them).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id_var: ContextVar[str | None] = ContextVar("job_id", default=None)
_CONTEXT_VARS = {"request_id": request_id_var, "job_id": job_id_var}

_HANDLER_MARK = "_xmlconv_json"

# The current span's (trace_id, span_id), or None outside a span: set by common/tracing.py when
# traces are on; None otherwise, so that logging costs nothing more and imports nothing of them.
_trace_ids: Callable[[], tuple[str, str] | None] | None = None


def use_trace_ids(source: Callable[[], tuple[str, str] | None] | None) -> None:
    """Put the ids `source()` returns into every line from now on (None: no more)."""
    global _trace_ids
    _trace_ids = source


def utc_timestamp(epoch_seconds: float) -> str:
    """`2026-11-25T14:30:45.123Z`."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ServiceJsonFormatter(JsonFormatter):
    """python-json-logger's formatter with the service's field names and context."""

    def __init__(self, service: str) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            static_fields={"service": service},
            # ASCII only: a raw U+2028, U+2029 or U+0085 in a message (a client's path, say)
            # is a line break to many log collectors, which would split one record in two.
            json_ensure_ascii=True,
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["timestamp"] = utc_timestamp(record.created)
        super().add_fields(log_data, record, message_dict)
        for field, var in _CONTEXT_VARS.items():
            value = var.get()
            if value is not None and log_data.get(field) is None:
                log_data[field] = value
        if _trace_ids is not None and (ids := _trace_ids()) is not None:
            log_data["trace_id"], log_data["span_id"] = ids


def json_line(service: str, level: str, logger: str, message: str, **fields: Any) -> str:
    """One log line built by hand, for the few places that must not go through `logging`
    (before it is set up, or inside a signal handler)."""
    import json
    import time

    return json.dumps({"timestamp": utc_timestamp(time.time()), "level": level,
                       "logger": logger, "message": message, "service": service, **fields})


def json_handler(service: str, stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(ServiceJsonFormatter(service))
    setattr(handler, _HANDLER_MARK, True)
    return handler


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every logger's records through one JSON handler on stdout (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(json_handler(service))
    root.setLevel(level)
    logging.captureWarnings(True)
    # Libraries that log every connection or poll at INFO drown the useful lines.
    for noisy in ("urllib3", "kombu.pidbox"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


@contextmanager
def log_context(**values: str | None) -> Iterator[None]:
    """Attach request_id / job_id to every line logged inside the block."""
    tokens = [(_CONTEXT_VARS[name], _CONTEXT_VARS[name].set(value)) for name, value in
              values.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
