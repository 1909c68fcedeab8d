"""Documents the converter cannot convert: each refused with its code and, for parse
errors, the line and column of the fault; whatever was written before the error must
not pass for a complete result.
"""

from __future__ import annotations

import codecs
import json

import pytest

from converter import ConversionError

CHUNK_SIZES = (None, 1, 7, 64)
FORMATS = ("json", "yaml", "jsonl", "csv", "text")


def assert_not_complete_json(out: bytes) -> None:
    if out:
        with pytest.raises(ValueError):
            json.loads(out)


# (id, document, line, first column, last column): the column must point at the faulty
# token or just past it (libxml2 reports the position where it stopped).
MALFORMED = [
    ("mismatched_tag_line_3", b"<r>\n  <a>\n  </b>\n</r>", 3, 3, 7),
    ("duplicate_attribute_line_2", b'<r>\n  <a x="1" x="2"/>\n</r>', 2, 11, 18),
    ("junk_after_root_line_3", b"<r/>\n\n  junk", 3, 3, 7),
    ("unquoted_attribute", b"<r>\n<a b=c/></r>", 2, 4, 8),
    ("bad_element_name", b"<r>\n\n<1a/></r>", 3, 1, 3),
    ("bare_ampersand", b"<r>\n a & b</r>", 2, 4, 6),
    ("lt_in_attribute", b'<r>\n<a x="<"/></r>', 2, 6, 8),
    ("control_character", b"<r>\n\n\n<a>\x01</a></r>", 4, 4, 5),
    ("invalid_char_reference", b"<r>\n<a>&#0;</a></r>", 2, 4, 8),
    ("noncharacter_uffff", b"<r>\n<a>\xef\xbf\xbf</a></r>", 2, 4, 5),
    ("undefined_entity", b"<r>\n<a>&nosuch;</a></r>", 2, 4, 12),
    ("second_root", b"<r>1</r>\n<r>2</r>", 2, 1, 2),
    ("close_without_open", b"<r>\n</a></r>", 2, 1, 5),
]


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
@pytest.mark.parametrize(
    ("name", "doc", "line", "first", "last"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_malformed_document_reports_line_and_column(
    fail, name: str, doc: bytes, line: int, first: int, last: int, chunk_size
) -> None:
    error, out = fail(doc, "json", chunk_size=chunk_size)
    assert error.code == "XML_PARSE_ERROR", error.message
    assert (error.line, error.column) != (None, None), error.message
    assert error.line == line, error.message
    assert first <= error.column <= last, (error.column, error.message)
    assert error.message
    assert_not_complete_json(out)
    assert error.envelope() == {"error": {
        "code": "XML_PARSE_ERROR",
        "message": error.message,
        "details": {"line": error.line, "column": error.column},
    }}


@pytest.mark.parametrize(
    ("name", "doc", "line", "first", "last"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_error_position_is_the_same_in_every_format(
    fail, name: str, doc: bytes, line: int, first: int, last: int
) -> None:
    errors = {fmt: fail(doc, fmt)[0] for fmt in FORMATS}
    positions = {(e.code, e.line, e.column) for e in errors.values()}
    assert len(positions) == 1, positions


def test_mismatched_tag_exact_position(fail) -> None:
    error, _ = fail(b'<?xml version="1.0"?>\n<r>\n  <a>text</b>\n</r>\n')
    assert (error.code, error.line) == ("XML_PARSE_ERROR", 3)
    assert error.column == 14  # just past "</b>" on '  <a>text</b>'
    assert error.message == "Opening and ending tag mismatch: <a> opened on line 3 closed by </b>"


# (document, the line of the start tag left open): the message names where that element
# began (the error's own position is the end tag's); a start tag over several lines began
# at its '<'.
MISMATCHES = [
    (b"<r>\n  <a>\n  </b>\n</r>", "<a> opened on line 2 closed by </b>"),
    (b"<r>\n</a></r>", "<r> opened on line 1 closed by </a>"),
    (b"<r>\n\n<a\n  x='1'\n  y=\"2\">\ntext\n</b></r>", "<a> opened on line 3 closed by </b>"),
    (b"<r><!-- a\ncomment\n--><a></b></r>", "<a> opened on line 3 closed by </b>"),
    (b"<r\n>" + b"<x>1</x>\n" * 50 + b"<x:y\nz='a&#10;b'>\n</r>",
     "<x:y> opened on line 52 closed by </r>"),
]


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("doc", "names"), MISMATCHES)
def test_mismatched_tag_names_the_line_of_its_start_tag(fail, doc, names, fmt, chunk_size):
    error, _ = fail(doc, fmt, chunk_size=chunk_size)
    assert error.code == "XML_PARSE_ERROR"
    assert error.message == "Opening and ending tag mismatch: " + names
    assert "line 0" not in error.message


TRUNCATED = [
    ("after_children", b"<r><a>1</a><a>2</a>"),
    ("in_start_tag", b"<r><a"),
    ("in_attribute", b'<r a="1'),
    ("in_text", b"<r><a>some te"),
    ("in_comment", b"<r><!-- unterminated"),
    ("in_cdata", b"<r><![CDATA[ x"),
    ("in_end_tag", b"<r><a>1</a></"),
    ("open_root_only", b"<r>"),
    ("deep", b"<r><a><b><c>1</c><c>2</c></b>"),
    ("records", b"<rows>" + b"<row><v>1</v></row>" * 200 + b"<row><v>"),
]


@pytest.mark.parametrize("chunk_size", (None, 7))
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("name", "doc"), TRUNCATED, ids=[t[0] for t in TRUNCATED])
def test_truncated_document_is_a_parse_error(fail, name: str, doc: bytes, fmt, chunk_size):
    error, out = fail(doc, fmt, chunk_size=chunk_size)
    assert error.code == "XML_PARSE_ERROR", error.message
    assert error.line == 1
    assert error.column is not None and error.column >= len(doc) - 10
    if fmt == "json":
        assert_not_complete_json(out)


@pytest.mark.parametrize(
    "doc",
    [b"", b" ", b"   \n\t \r\n", b"\n" * 5000, codecs.BOM_UTF8, codecs.BOM_UTF8 + b" \n "],
    ids=["empty", "space", "mixed-whitespace", "many-newlines", "bom-only", "bom-whitespace"],
)
@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_empty_input(fail, doc: bytes, chunk_size) -> None:
    for fmt in FORMATS:
        error, out = fail(doc, fmt, chunk_size=chunk_size)
        assert error.code == "EMPTY_INPUT", (fmt, error.code, error.message)
        assert out == b""


def test_leading_whitespace_before_the_root_is_allowed(run) -> None:
    """XML allows any amount of whitespace before the root when there is no declaration."""
    assert run(b"\n" * 1000 + b"<r>x</r>") == b'{"r":"x"}\n'
    assert run(b" " * (2 << 20) + b"<r>x</r>") == b'{"r":"x"}\n'


NOT_XML = [
    ("json_object", b'{"a": 1, "b": [1, 2]}'),
    ("json_array", b"[1, 2, 3]"),
    ("plain_text", b"hello world\nthis is not xml\n"),
    ("csv", b"a,b,c\r\n1,2,3\r\n"),
    ("yaml", b"key: value\nlist:\n  - 1\n"),
    ("binary_png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"),
    ("binary_zeros", b"\x00" * 64),
    ("binary_random", bytes(range(256)) * 4),
    ("gzip", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"),
    ("leading_whitespace_then_text", b"\n\n   plain text"),
]


@pytest.mark.parametrize(("name", "doc"), NOT_XML, ids=[n[0] for n in NOT_XML])
@pytest.mark.parametrize("chunk_size", (None, 7))
def test_not_xml(fail, name: str, doc: bytes, chunk_size) -> None:
    for fmt in FORMATS:
        error, out = fail(doc, fmt, chunk_size=chunk_size)
        assert error.code == "NOT_XML", (fmt, error.code, error.message)
        assert out == b""


@pytest.mark.parametrize(
    "doc",
    [b'<?xml version="1.0"?>', b"<!-- just a comment -->", b"<?pi only?>\n"],
    ids=["declaration-only", "comment-only", "pi-only"],
)
def test_prolog_without_root_is_refused(fail, doc: bytes) -> None:
    error, out = fail(doc)
    assert error.code in ("NOT_XML", "XML_PARSE_ERROR", "EMPTY_INPUT")
    assert out == b""


ENCODING = [
    ("invalid_utf8_ff", b"<r>\xff\xfe</r>", 1),
    ("truncated_multibyte", b"<r>\n\xc3</r>", 2),
    ("overlong_encoding", b"<r>\xc0\xaf</r>", 1),
    ("latin1_without_declaration", b"<r>\n\ncaf\xe9</r>", 3),
    ("invalid_utf8_in_attribute", b'<r a="\xff"/>', 1),
    ("invalid_utf8_after_records", b"<r>" + b"<a>1</a>" * 100 + b"\n<a>\xff</a></r>", 2),
]


@pytest.mark.parametrize(("name", "doc", "line"), ENCODING, ids=[e[0] for e in ENCODING])
@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_invalid_utf8_is_an_encoding_error(fail, name: str, doc: bytes, line: int, chunk_size):
    error, out = fail(doc, "json", chunk_size=chunk_size)
    assert error.code == "ENCODING_ERROR", error.message
    assert error.line == line
    assert_not_complete_json(out)


@pytest.mark.parametrize("encoding", ["bogus-enc", "UTF-99", "x-no-such-charset"])
@pytest.mark.parametrize("chunk_size", (None, 7))
def test_unknown_encoding_declaration(fail, encoding: str, chunk_size) -> None:
    doc = f'<?xml version="1.0" encoding="{encoding}"?>\n<r>x</r>'.encode()
    for fmt in FORMATS:
        error, out = fail(doc, fmt, chunk_size=chunk_size)
        assert error.code == "ENCODING_ERROR", (fmt, error.code, error.message)
        assert encoding.lower() in error.message.lower()
        assert out == b""


def test_errors_are_conversion_errors_with_a_message(fail) -> None:
    error, _ = fail(b"<r>")
    assert isinstance(error, ConversionError)
    assert isinstance(error, Exception)
    assert str(error) == error.message
    assert error.code in repr(error)
