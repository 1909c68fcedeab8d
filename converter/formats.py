"""Output formats: name, media type and file extension (no conversion code here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    name: str
    content_type: str
    extension: str


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("json", "application/json", "json"),
        Format("jsonl", "application/x-ndjson", "jsonl"),
        Format("csv", "text/csv; charset=utf-8", "csv"),
        Format("yaml", "application/yaml", "yaml"),
        Format("text", "text/plain; charset=utf-8", "txt"),
    )
}
