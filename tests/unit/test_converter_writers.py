"""The engine's own writers (converter/_jsonout.pxi) byte for byte against their references.

JSON and JSON Lines:
The differential tests compare parsed values; here the bytes themselves must be those of
xmltodict's value serialized as the converter always has (render.json_bytes: orjson's
spelling, keys in xmltodict's order), on generated documents with every option set, with
types=infer (xmltodict's postprocessor calling values.infer), fed in chunks of any size.
YAML: the Python layout (document.write_document through render.YamlRenderer), the same way.
CSV: the records as values walked by _emit.Rows (tabular.write_csv), the same way, with the
options that name its columns (prefixes, text keys that meet element and attribute names).
Documents large enough to send a group's bytes through its temporary file are in
tests/integration/test_converter_large_json.py (slow: xmltodict reads 10 MB).
"""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import xmltodict
from hypothesis import given, settings
from hypothesis import strategies as st
from test_differential import (
    HYPOTHESIS_SETTINGS,
    OPTION_SETS,
    _options,
    _record_path,
    documents,
    records_at,
)

import converter
from converter.document import write_document
from converter.limits import Limits
from converter.options import parse_options
from converter.records import record_values
from converter.render import YamlRenderer, json_bytes
from converter.source import Source
from converter.tabular import write_csv
from converter.values import infer


def _infer(path: Any, key: str, value: Any) -> tuple[str, Any]:
    return key, infer(value) if isinstance(value, str) else value


def _convert(doc: bytes, fmt: str, options: dict[str, Any], chunk_size: int = 1 << 20) -> bytes:
    out = io.BytesIO()
    converter.convert(io.BytesIO(doc), out, fmt, options, chunk_size=chunk_size)
    return out.getvalue()


def _with_types(data: st.DataObject, options: dict, kwargs: dict) -> tuple[dict, dict]:
    if data.draw(st.booleans(), label="types=infer"):
        return {**options, "types": "infer"}, {**kwargs, "postprocessor": _infer}
    return options, kwargs


@settings(HYPOTHESIS_SETTINGS, max_examples=120)
@given(data=st.data(), document=documents(), chunk_size=st.sampled_from([1, 7, 64, 1 << 20]))
def test_json_bytes_are_xmltodicts_value_serialized(data: st.DataObject, document,
                                                    chunk_size: int) -> None:
    doc, _ = document
    options, kwargs = _with_types(data, *_options(data.draw(OPTION_SETS, label="options"),
                                                  data.draw))
    expected = json_bytes(xmltodict.parse(doc, **kwargs)) + b"\n"
    assert _convert(doc, "json", options, chunk_size) == expected


@settings(HYPOTHESIS_SETTINGS, max_examples=80)
@given(data=st.data(), document=documents(need_child=True),
       chunk_size=st.sampled_from([1, 13, 1 << 20]))
def test_jsonl_lines_are_xmltodicts_records_serialized(data: st.DataObject, document,
                                                       chunk_size: int) -> None:
    doc, root = document
    path = _record_path(doc, root, data.draw)
    choice = data.draw(st.sampled_from(["default", "keep_whitespace", "prefix_dash",
                                        "force_list_drawn"]), label="options")
    options, kwargs = _with_types(data, *_options(choice, data.draw))
    expected = b"".join(json_bytes(record) + b"\n"
                        for record in records_at(xmltodict.parse(doc, **kwargs), path))
    assert _convert(doc, "jsonl", {**options, "record_path": path}, chunk_size) == expected


NUMBERISH = ["0", "-0", "10", "-1", "-10", "007", "-007", "+1", "1.", ".5", "1.5", "-0.0",
             "1e5", "1E+5", "1e-5", "2e", "1e400", "-1e400", "123456789012345678",
             "1234567890123456789", "9223372036854775807", "9223372036854775808",
             "-9223372036854775808", "-9223372036854775809", "true", "false", "True", "null",
             "nan", "inf", "0x10", "1_000", "١٢", "12a", "-", ""]


def test_inferred_values_are_spelled_as_values_infer_makes_them() -> None:
    """Each text and attribute value typed as values.infer types it, spelled as orjson."""
    doc = "<r>" + "".join(f'<v a="{text}">{text}</v>' for text in NUMBERISH) + "</r>"
    expected = json_bytes(xmltodict.parse(doc, postprocessor=_infer)) + b"\n"
    assert _convert(doc.encode(), "json", {"types": "infer"}) == expected
    assert b'"@a":10,' in expected  # the case that once came out as 0


def test_the_roots_end_waits_for_the_end_of_the_document() -> None:
    """Junk after the root: the error, and no output that looks complete."""
    out = io.BytesIO()
    try:
        converter.convert(io.BytesIO(b"<r><a>1</a><a>2</a></r><junk/>"), out, "json")
    except converter.ConversionError as error:
        assert error.code == "XML_PARSE_ERROR"
    else:
        raise AssertionError("junk after the root was accepted")
    assert not out.getvalue().endswith(b"}\n")


def _yaml_reference(doc: bytes, options: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    write_document(Source(io.BytesIO(doc), None, 1 << 20), out, YamlRenderer(),
                   parse_options(options), Limits())
    return out.getvalue()


@settings(HYPOTHESIS_SETTINGS, max_examples=150)
@given(data=st.data(), document=documents(), chunk_size=st.sampled_from([1, 7, 64, 1 << 20]))
def test_yaml_bytes_are_the_python_layouts(data: st.DataObject, document,
                                           chunk_size: int) -> None:
    doc, _ = document
    options, _ = _with_types(data, *_options(data.draw(OPTION_SETS, label="options"),
                                             data.draw))
    assert _convert(doc, "yaml", options, chunk_size) == _yaml_reference(doc, options)


def test_yaml_scalars_are_spelled_as_the_python_layout_spells_them() -> None:
    texts = [*NUMBERISH, "yes", "No", "ON", "y", "n", "a:b", "a: b", "a b", "a  b", " a", "a ",
             "_x", "1a", "x-1/2.3", "é", "\u2028", "tab\there", 'quo"te', "back\\slash",
             "del\x7f", "line\nbreak", "#c", "&a", "*a", "- a", "a #b", "x:", "<", "\u0085"]
    doc = "<r>" + "".join(f"<v a={quoteattr(t)}>{escape(t)}</v>" for t in texts) + "</r>"
    for options in ({}, {"types": "infer"}):
        assert _convert(doc.encode(), "yaml", options) == _yaml_reference(doc.encode(), options)


def _csv_reference(doc: bytes, options: dict[str, Any], record_path: str) -> bytes:
    out = io.BytesIO()
    parsed = parse_options(options)
    limits = Limits()
    write_csv(record_values(Source(io.BytesIO(doc), None, 1 << 20), parsed, limits,
                            record_path.split("/")), out, parsed.text_key, limits.max_columns)
    return out.getvalue()


def _csv_or_error(doc: bytes, options: dict[str, Any],
                  chunk_size: int) -> tuple[bytes | str, str | None]:
    """Our CSV and the record path it used, or the error's code."""
    out = io.BytesIO()
    try:
        result = converter.convert(io.BytesIO(doc), out, "csv", options, chunk_size=chunk_size)
    except converter.ConversionError as error:
        return error.code, None
    return out.getvalue(), result.record_path


# Column names that meet: no prefix (attributes named as elements), a text key that is an
# element's or an attribute's name.
_CSV_NAMING = st.sampled_from([{}, {}, {"attr_prefix": ""}, {"attr_prefix": "", "text_key": "a"},
                               {"text_key": "@id"}, {"text_key": "b"}, {"attr_prefix": "_"}])


@settings(HYPOTHESIS_SETTINGS, max_examples=200)
@given(data=st.data(), document=documents(need_child=True),
       chunk_size=st.sampled_from([1, 7, 64, 1 << 20]))
def test_csv_bytes_are_the_python_tables(data: st.DataObject, document, chunk_size: int) -> None:
    doc, root = document
    options, _ = _with_types(data, *_options(data.draw(OPTION_SETS, label="options"),
                                             data.draw))
    options = {**options, **data.draw(_CSV_NAMING, label="naming")}
    if options.get("namespaces") is None:
        options["namespaces"] = data.draw(st.sampled_from(["keep", "keep", "strip"]))
    # A picked path is told as its keys joined by "/", which expanded keys' URIs may hold.
    how = data.draw(st.sampled_from(["child", "root"] if options["namespaces"] == "expand"
                                    else ["child", "root", "picked"]), label="record path")
    if how == "child":
        options["record_path"] = _record_path(doc, root, data.draw)
    elif how == "root":
        options["record_path"] = _record_path(doc, root, data.draw).split("/")[0]
    ours, path = _csv_or_error(doc, options, chunk_size)
    if path is None:  # a record path of prefixed names that strip or expand do not match
        assert ours == "RECORD_NOT_FOUND" and options["namespaces"] != "keep"
        return
    assert ours == _csv_reference(doc, options, path)


def test_csv_values_are_spelled_as_the_python_table_spells_them() -> None:
    """Typed values, Unicode whitespace stripped, empty elements and records, repeats that
    are not adjacent, text beside children, DTD defaults."""
    texts = [*NUMBERISH, "\u00a0x\u3000", "\u00a0", " a ", "é"]
    cells = "".join(f"<v a={quoteattr(t)}>{escape(t)}</v>" for t in texts)
    doc = ("<!DOCTYPE r [<!ATTLIST row d CDATA 'dflt'>]><r>"
           f"<row>{cells}<w/>tail<v/></row><row/><row>only text</row><row><v><v>1</v></v></row>"
           "</r>").encode()
    for options in ({}, {"types": "infer"}, {"strip_whitespace": False},
                    {"force_list": ["v", "w"]}, {"namespaces": "expand"}):
        for chunk_size in (1, 1 << 20):
            ours, path = _csv_or_error(doc, {**options, "record_path": "r/row"}, chunk_size)
            assert ours == _csv_reference(doc, {**options, "record_path": "r/row"}, "r/row")
