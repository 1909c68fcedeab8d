"""Reading a Server-Sent Events stream (GET /jobs/<id>/events): the spec's line format
(html.spec.whatwg.org, "Interpreting an event stream"), for the fields the API sends.

    for event in parse(response.iter_lines(decode_unicode=True)):
        event.name, event.id, event.data
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    name: str  # `event:` ("message" when none was given)
    data: str  # the `data:` lines, joined by newlines
    id: str | None  # the last `id:` seen so far in the stream (what Last-Event-ID resends)


def parse(lines: Iterable[str]) -> Iterator[Event]:
    """Events as they complete (a blank line dispatches one); comments and `retry:` are read
    and dropped; an event without data is not dispatched, as in a browser."""
    name, data, last_id = "", [], None
    for line in lines:
        if line == "":
            if data:
                yield Event(name or "message", "\n".join(data), last_id)
            name, data = "", []
            continue
        if line.startswith(":"):
            continue  # a comment: the heartbeat
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
        elif field == "id" and "\0" not in value:
            last_id = value
