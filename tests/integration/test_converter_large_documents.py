"""The engine's JSON and YAML writers on documents whose groups outgrow memory
(converter/_jsonout.pxi): a group's bytes past 4 MiB go to a temporary file and come back
whole and in order, byte for byte what xmltodict's value serialized (JSON) and the Python
layout (YAML) are. tests/unit/test_converter_writers.py has the small documents."""

from __future__ import annotations

import io
from typing import Any

import xmltodict

import converter
from converter.document import write_document
from converter.limits import Limits
from converter.options import parse_options
from converter.render import YamlRenderer, json_bytes
from converter.source import Source
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
    a single child as large (its key written once: its list prefix skipped), and a later group
    that repeats around it: all leave memory for a temporary file (past
    4 MiB) and come back whole, in xmltodict's order."""
    big = _records(100_000)  # 4.8 MB of JSON under one <a>
    doc = (f'<r k="1"><a>{big}</a><b>1</b><c>{_records(100_000, "x")}</c>'
           f'<b>{_records(100_000, "y")}</b><a/></r>').encode()
    assert len(doc) > 15_000_000
    expected = json_bytes(xmltodict.parse(doc, postprocessor=_infer)) + b"\n"
    assert _convert(doc, "json", {"types": "infer"}, 65_536) == expected
    # YAML: a single item's list prefix is skipped as it comes back from its file
    reference = io.BytesIO()
    write_document(Source(io.BytesIO(doc), None, 1 << 20), reference, YamlRenderer(),
                   parse_options({}), Limits())
    assert _convert(doc, "yaml", {}, 65_536) == reference.getvalue()


def test_one_record_as_large_as_the_document() -> None:
    """jsonl, a record holding everything: its first group streams straight through."""
    doc = f"<r><rec>{_records(80_000)}</rec></r>".encode()
    expected = json_bytes(xmltodict.parse(doc)["r"]["rec"]) + b"\n"
    assert _convert(doc, "jsonl", {"record_path": "r/rec"}) == expected
