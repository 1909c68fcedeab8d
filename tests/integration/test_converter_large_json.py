"""The engine's JSON writer on documents whose groups outgrow memory (converter/_jsonout.pxi):
a group's bytes past 4 MiB go to a temporary file and come back whole and in order; the
bytes must still be xmltodict's value serialized (tests/unit/test_converter_json_writer.py
has the small documents)."""

from __future__ import annotations

import io
from typing import Any

import xmltodict

import converter
from converter.render import json_bytes
from converter.values import infer


def _infer(path: Any, key: str, value: Any) -> tuple[str, Any]:
    return key, infer(value) if isinstance(value, str) else value


def _convert(doc: bytes, fmt: str, options: dict[str, Any], chunk_size: int = 1 << 20) -> bytes:
    out = io.BytesIO()
    converter.convert(io.BytesIO(doc), out, fmt, options, chunk_size=chunk_size)
    return out.getvalue()


def _records(count: int, name: str = "e") -> str:
    return "".join(f'<{name} id="{i}"><v>{i % 7}</v><w>x{i}</w><v>1.5e{i % 300}</v></{name}>\n'
                   for i in range(count))


def test_large_groups_go_through_their_spool_files_in_order() -> None:
    """A first child too large for memory (its list form is unknown until its parent ends),
    and a later group that repeats around it: both leave memory for a temporary file (past
    4 MiB) and come back whole, in xmltodict's order."""
    big = _records(100_000)  # 4.8 MB of JSON under one <a>
    doc = (f'<r k="1"><a>{big}</a><b>1</b><c>{_records(50, "x")}</c>'
           f'<b>{_records(100_000, "y")}</b><a/></r>').encode()
    assert len(doc) > 10_000_000
    expected = json_bytes(xmltodict.parse(doc, postprocessor=_infer)) + b"\n"
    assert _convert(doc, "json", {"types": "infer"}, 65_536) == expected


def test_one_record_as_large_as_the_document() -> None:
    """jsonl, a record holding everything: its first group streams straight through."""
    doc = f"<r><rec>{_records(80_000)}</rec></r>".encode()
    expected = json_bytes(xmltodict.parse(doc)["r"]["rec"]) + b"\n"
    assert _convert(doc, "jsonl", {"record_path": "r/rec"}) == expected
