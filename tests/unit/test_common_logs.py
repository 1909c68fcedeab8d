"""common/logs.py: one JSON object per line with the service's fields and context."""

from __future__ import annotations

import io
import json
import logging

from common.logs import json_handler, log_context


def capture(service="api"):
    stream = io.StringIO()
    logger = logging.getLogger(f"test.logs.{service}")
    logger.handlers = [json_handler(service, stream)]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_required_fields_and_context():
    logger, stream = capture()
    logger.info("plain")
    with log_context(request_id="r-1", job_id="j-1"):
        logger.warning("in context %s", "x", extra={"bytes": 3})
    logger.info("after")
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert set(first) == {"timestamp", "level", "logger", "message", "service"}
    assert first["timestamp"].endswith("Z") and "T" in first["timestamp"]
    assert first["level"] == "INFO" and first["logger"] == "test.logs.api"
    assert first["service"] == "api"
    assert second["message"] == "in context x" and second["bytes"] == 3
    assert second["request_id"] == "r-1" and second["job_id"] == "j-1"
    assert "request_id" not in third


def test_exceptions_stay_on_one_line():
    logger, stream = capture("worker")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["level"] == "ERROR" and "ValueError: boom" in record["exc_info"]
