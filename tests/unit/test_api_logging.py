"""api/gunicorn_logging.py: what gunicorn's lines keep of a request (names, never values)."""

from __future__ import annotations

import pytest

from api.gunicorn_logging import client_bytes_dropped, query_names


def test_the_access_line_lists_parameter_names_once_in_order():
    query = "format=json&webhook_url=http%3A%2F%2Fh%2F%3Ftoken%3Ds3cr3t&metadata=%7B%7D&format=csv"
    assert query_names(query) == ["format", "webhook_url", "metadata"]
    assert query_names("") == []
    assert query_names("flag") == ["flag"]


def test_the_names_listed_are_bounded():
    names = query_names("&".join(f"{i:02d}{'n' * 100}=v" for i in range(50)))
    assert len(names) == 20 and all(len(name) == 64 for name in names)


@pytest.mark.parametrize("message, kept", [
    ("Invalid request from ip=127.0.0.1: Invalid HTTP Version: 'tok HTTP/1.1'",
     "Invalid request from ip=127.0.0.1: Invalid HTTP Version"),
    ("Invalid request from ip=::1: Invalid HTTP request line: 'GET /jobs?t=s x'",
     "Invalid request from ip=::1: Invalid HTTP request line"),
    ("Invalid request from ip=10.0.0.1: Request Line is too large (5000 > 4094)",
     "Invalid request from ip=10.0.0.1: Request Line is too large (5000 > 4094)"),
    ("Error handling request POST /jobs?webhook_url=http://h/?t=s3cr3t&a=b",
     "Error handling request POST /jobs?…"),
    ("Booting worker with pid: 12", "Booting worker with pid: 12"),
])
def test_gunicorns_lines_lose_what_the_client_sent(message, kept):
    assert client_bytes_dropped(message) == kept
