"""Streaming internals: the output must not depend on how the input is chunked.

Tiny chunks make every element arrive in pieces, so the document writer streams open
elements as frames, spools repeated keys and joins text split across chunks; one big
chunk converts the whole document at once. Both must write the same bytes.
"""

from __future__ import annotations

import importlib
import io
import json
from pathlib import Path

import pytest
import xmltodict
import yaml

import converter
import converter.document
import converter.values

CHUNK_SIZES = (1, 7, 64, 1 << 19)
ONE_CHUNK = 1 << 19


def _records(count: int) -> bytes:
    rows = []
    for i in range(count):
        extra = f"<tag>t{i % 3}</tag><note/><tag>u</tag>" if i % 4 == 0 else ""
        text = "text &amp; more" if i % 5 == 0 else ""
        rows.append(
            f'<row id="{i}"><name>N{i} &lt;x&gt;</name>{extra}{text}'
            f'<price cur="EUR">{i}.5</price></row>'
        )
    return ('<?xml version="1.0"?>\n<rows n="x">\n' + "\n".join(rows) + "\n</rows>\n").encode()


# (id, document, options) -- each converted to every format at every chunk size.
DOCUMENTS: list[tuple[str, bytes, dict]] = [
    (
        "root_non_adjacent_repeats",
        b"<r><b>1</b><c/><b>2</b><d>x</d><b>3</b><c>y</c></r>",
        {},
    ),
    (
        "root_first_key_repeats_after_other_keys",
        b'<r id="7"><a>1</a><b>2</b><c><x>3</x></c><a>4</a><b>5</b><a><z>6</z></a></r>',
        {},
    ),
    (
        "nested_non_adjacent_repeats",
        b"<r><x><b>1</b><c/><b><z>2</z><z>3</z></b><c>q</c><b/></x><y/><x><b>4</b></x></r>",
        {},
    ),
    (
        "open_path_three_levels",
        b"<r><a><b><c>1</c><d>2</d><c>3</c></b><e/><b><c>4</c></b></a><f>5</f><a>6</a></r>",
        {},
    ),
    (
        "text_between_children",
        b"<r>lead<a>1</a> mid <b><c>2</c>inner<c>3</c> more</b>tail<a>4</a>end</r>",
        {},
    ),
    (
        "text_between_children_kept_whitespace",
        b"<r>\n  lead\n  <a> 1 </a>\n  <b>\n    <c>2</c>\n  </b>\n  tail\n</r>\n",
        {"strip_whitespace": False},
    ),
    (
        "force_list_root",
        b'<r a="1"><x>1</x><y>2</y><x>3</x></r>',
        {"force_list": ["r"]},
    ),
    (
        "force_list_first_key",
        b"<r><x>1</x><y>2</y><z><x>in</x></z></r>",
        {"force_list": ["x"]},
    ),
    (
        "force_list_root_and_first_key_and_text",
        b"<r>t<x>1</x><y><x>2</x>u</y>v</r>",
        {"force_list": ["r", "x", "#text"]},
    ),
    (
        "attribute_key_meets_child_key",
        b'<r a="1" b="2"><a>3</a><c/><b><a x="y">4</a></b></r>',
        {"attr_prefix": ""},
    ),
    (
        "text_key_meets_child_key",
        b"<r>x<t>1</t>y<u><t>2</t>z</u></r>",
        {"text_key": "t"},
    ),
    (
        "long_text_in_root_and_child",
        b"<r>" + b"lorem &amp; ipsum " * 40 + b"<a>" + b"dolor " * 40 + b"</a>sit</r>",
        {},
    ),
    (
        "cdata_comments_pis_across_chunks",
        b"<r><!-- c --><a><![CDATA[<x> & ]]>y<?pi z?></a><?pi?><a>2<!--c-->3</a></r>",
        {},
    ),
    (
        "namespaces_declared_below_root",
        b'<r xmlns="urn:d"><p:a xmlns:p="urn:1" p:k="v">1</p:a><s xmlns:p="urn:2">'
        b"<p:a>2</p:a><p:a>3</p:a></s><p:a xmlns:p=\"urn:1\">4</p:a></r>",
        {},
    ),
    (
        "namespaces_expanded",
        b'<r xmlns="urn:d" xmlns:q="urn:q"><a q:k="1"/><q:a/><a>2</a></r>',
        {"namespaces": "expand"},
    ),
    (
        "inferred_types",
        b'<r n="1"><v>2</v><v>2.5</v><w>true</w><v>007</v></r>',
        {"types": "infer"},
    ),
    (
        "root_without_children",
        b'<r a="1">only text, "quoted"</r>',
        {},
    ),
    (
        "utf8_multibyte_split_by_chunks",
        "<r><a>é中😀</a><b ä='ö'>ß</b><a>€</a></r>".encode(),
        {},
    ),
    (
        "utf16",
        "\ufeff<r><a>é中😀</a><a>x</a></r>".encode("utf-16-le"),
        {},
    ),
    (
        "bom_utf8",
        "\ufeff<r><a>é</a><a>x</a></r>".encode(),
        {},
    ),
    (
        "yaml_tricky_strings_in_frames",
        "<r><k>yes</k><k>~</k><k>007</k><m a=' x: y #z '>12:30</m><k>1e5</k>"
        "<n>2026-11-25</n><k>a\\b\t\"c\"</k><m a=''>\u2028\x85\x7f😀</m></r>".encode(),
        {"strip_whitespace": False},
    ),
    (
        "records",
        _records(40),
        {},
    ),
]
DOC_IDS = [d[0] for d in DOCUMENTS]

FORMAT_VARIANTS: list[tuple[str, dict]] = [
    ("json", {}),
    ("json", {"indent": 2}),
    ("yaml", {}),
    ("jsonl", {}),
    ("csv", {}),
    ("text", {}),
    ("text", {"include_attributes": True, "separator": "|"}),
]
FORMAT_IDS = ["json", "json-indent", "yaml", "jsonl", "csv", "text", "text-attributes"]


def convert_with(doc: bytes, fmt: str, options: dict, chunk_size: int):
    """(output, record path) or ("error", code, line, column) for one conversion."""
    out = io.BytesIO()
    try:
        result = converter.convert(io.BytesIO(doc), out, fmt, options, chunk_size=chunk_size)
    except converter.ConversionError as error:
        return ("error", error.code, error.line, error.column)
    return out.getvalue(), result.record_path


@pytest.mark.parametrize(("fmt", "fmt_options"), FORMAT_VARIANTS, ids=FORMAT_IDS)
@pytest.mark.parametrize(("name", "doc", "options"), DOCUMENTS, ids=DOC_IDS)
def test_output_is_identical_for_every_chunk_size(
    name: str, doc: bytes, options: dict, fmt: str, fmt_options: dict
) -> None:
    options = {**options, **fmt_options}
    reference = convert_with(doc, fmt, options, ONE_CHUNK)
    assert reference[0] != "error", reference
    for chunk_size in CHUNK_SIZES:
        assert convert_with(doc, fmt, options, chunk_size) == reference, chunk_size


@pytest.mark.parametrize(("name", "doc", "options"), DOCUMENTS, ids=DOC_IDS)
def test_streamed_json_equals_xmltodict_and_yaml_equals_json(
    name: str, doc: bytes, options: dict
) -> None:
    """The reference the chunking test holds everything to is itself right."""
    kwargs = {
        "force_list": tuple(options.get("force_list", ())),
        "strip_whitespace": options.get("strip_whitespace", True),
        "attr_prefix": options.get("attr_prefix", "@"),
        "cdata_key": options.get("text_key", "#text"),
        "process_namespaces": options.get("namespaces") == "expand",
    }
    for chunk_size in (7, ONE_CHUNK):
        out, _ = convert_with(doc, "json", options, chunk_size)
        value = json.loads(out)
        if options.get("types") != "infer":  # xmltodict has no type inference
            assert value == xmltodict.parse(doc, **kwargs)
        assert yaml.safe_load(convert_with(doc, "yaml", options, chunk_size)[0]) == value


def test_spooled_groups_on_disk_give_the_same_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Repeated keys of an open element collect in spools; tiny spools go to disk."""
    doc = (
        b"<r><a><k>1</k><m>x</m><k>2</k>"
        + b"".join(b"<m>%d</m><n>%d</n>" % (i, i) for i in range(200))
        + b"</a><b/><a>3</a></r>"
    )
    expected = {fmt: convert_with(doc, fmt, {}, ONE_CHUNK) for fmt in ("json", "yaml")}
    monkeypatch.setattr(converter.document, "SPOOL_MEMORY", 16, raising=False)
    for fmt in ("json", "yaml"):
        for chunk_size in (7, 64):
            assert convert_with(doc, fmt, {}, chunk_size) == expected[fmt]
    assert json.loads(expected["json"][0]) == xmltodict.parse(doc)


def test_large_records_document_identical_across_chunk_sizes() -> None:
    doc = _records(3000)  # about 250 KB
    for fmt in ("json", "jsonl", "csv", "yaml", "text"):
        reference = convert_with(doc, fmt, {}, ONE_CHUNK)
        for chunk_size in (4096, 65536):
            assert convert_with(doc, fmt, {}, chunk_size) == reference, fmt
    value = json.loads(convert_with(doc, "json", {}, 4096)[0])
    assert value == xmltodict.parse(doc)
    assert len(value["rows"]["row"]) == 3000


def test_file_path_source_equals_stream_source(tmp_path: Path) -> None:
    doc = _records(50)
    path = tmp_path / "in.xml"
    path.write_bytes(doc)
    for fmt in ("json", "csv", "text"):
        out = io.BytesIO()
        converter.convert(str(path), out, fmt)
        out_pathlike = io.BytesIO()
        converter.convert(path, out_pathlike, fmt, chunk_size=7)
        assert out.getvalue() == out_pathlike.getvalue() == convert_with(
            doc, fmt, {}, ONE_CHUNK
        )[0]


def test_accelerator_is_built_and_importable() -> None:
    """The C extension is the only engine (there is no Python fallback): a missing or
    broken build fails here by name, not only as an ImportError in every conversion test."""
    accel = importlib.import_module("converter._accel")
    assert accel.__file__.endswith((".so", ".pyd")), accel.__file__
    assert hasattr(accel, "Engine")
