"""Conversion options: what each one does to the output, and how bad values are refused.

xmltodict is the reference for every option it has an equivalent for.
"""

from __future__ import annotations

import io
import json
import sys

import pytest
import xmltodict
import yaml

import converter
from converter import ConversionError

NS_DOC = b"""<r xmlns="urn:d" xmlns:p="urn:p" xml:lang="en" p:att="1" plain="2">
  <a>1</a>
  <p:b p:x="y" x="z">2</p:b>
  <s xmlns:p="urn:other"><p:b p:k="v">3</p:b></s>
  <t xmlns="urn:t"><u xml:lang="fr">bonjour</u></t>
  <p:b>4</p:b>
</r>"""


# -------------------------------------------------------------------------- namespaces


def test_namespaces_keep_is_the_default_and_matches_xmltodict(run) -> None:
    expected = xmltodict.parse(NS_DOC)
    assert json.loads(run(NS_DOC)) == expected
    assert json.loads(run(NS_DOC, options={"namespaces": "keep"})) == expected
    r = expected["r"]
    assert r["@xmlns"] == "urn:d" and r["@xmlns:p"] == "urn:p"
    assert r["@xml:lang"] == "en" and r["@p:att"] == "1"
    assert r["p:b"] == [{"@p:x": "y", "@x": "z", "#text": "2"}, "4"]
    assert r["s"] == {"@xmlns:p": "urn:other", "p:b": {"@p:k": "v", "#text": "3"}}


def test_namespaces_expand_matches_xmltodict_process_namespaces(run) -> None:
    out = json.loads(run(NS_DOC, options={"namespaces": "expand"}))
    assert out == xmltodict.parse(NS_DOC, process_namespaces=True)
    r = out["urn:d:r"]
    assert r["@http://www.w3.org/XML/1998/namespace:lang"] == "en"
    assert r["@urn:p:att"] == "1"
    assert r["urn:p:b"][0]["@urn:p:x"] == "y"
    assert "urn:other:b" in r["urn:d:s"]  # the redeclared prefix resolves to its new URI
    assert r["urn:t:t"]["urn:t:u"]["#text"] == "bonjour"


def test_namespaces_strip_uses_local_names_and_drops_declarations(run) -> None:
    out = json.loads(run(NS_DOC, options={"namespaces": "strip"}))
    assert out == {
        "r": {
            "@lang": "en",
            "@att": "1",
            "@plain": "2",
            "a": "1",
            # p:x="y" and x="z" both strip to "@x": the later one wins, as in xmltodict.
            "b": [{"@x": "z", "#text": "2"}, "4"],
            "s": {"b": {"@k": "v", "#text": "3"}},
            "t": {"u": {"@lang": "fr", "#text": "bonjour"}},
        }
    }
    # xmltodict's nearest equivalent (every namespace mapped to None) differs only in
    # keeping the declarations as @xmlns.
    reference = xmltodict.parse(
        NS_DOC,
        process_namespaces=True,
        namespaces={
            "urn:d": None,
            "urn:p": None,
            "urn:other": None,
            "urn:t": None,
            "http://www.w3.org/XML/1998/namespace": None,
        },
    )

    def without_xmlns(value):
        if isinstance(value, dict):
            return {k: without_xmlns(v) for k, v in value.items() if k != "@xmlns"}
        if isinstance(value, list):
            return [without_xmlns(v) for v in value]
        return value

    assert out == without_xmlns(reference)
    assert b"xmlns" not in run(NS_DOC, options={"namespaces": "strip"})


def test_namespaces_undeclared_default_in_expand_mode(run) -> None:
    doc = b'<r xmlns="urn:1"><a/><s xmlns="urn:2"><a/></s><t xmlns=""><a/></t></r>'
    expected = xmltodict.parse(doc, process_namespaces=True)
    assert json.loads(run(doc, options={"namespaces": "expand"})) == expected


@pytest.mark.parametrize("mode", ["keep", "strip", "expand"])
def test_namespaces_apply_to_record_formats(run, mode: str) -> None:
    doc = b'<o:orders xmlns:o="urn:o"><o:order o:id="1"/><o:order o:id="2"/></o:orders>'
    lines = run(doc, "jsonl", {"namespaces": mode}).splitlines()
    key = {"keep": "@o:id", "strip": "@id", "expand": "@urn:o:id"}[mode]
    assert [json.loads(line) for line in lines] == [{key: "1"}, {key: "2"}]


# --------------------------------------------------------------- attr_prefix / text_key


@pytest.mark.parametrize(
    ("attr_prefix", "text_key"),
    [("-", "_text"), ("_", "#value"), ("", "#text"), ("attr_", "text"), ("$", "$t")],
)
def test_custom_attr_prefix_and_text_key_match_xmltodict(run, attr_prefix, text_key) -> None:
    doc = b'<r id="1"><a x="2">t</a><b>u</b><a>v<c/>w</a>tail</r>'
    options = {"attr_prefix": attr_prefix, "text_key": text_key}
    expected = xmltodict.parse(doc, attr_prefix=attr_prefix, cdata_key=text_key)
    assert json.loads(run(doc, options=options)) == expected
    assert yaml.safe_load(run(doc, "yaml", options)) == expected
    assert expected["r"][f"{attr_prefix}id"] == "1"


# --------------------------------------------------------------------------- force_list


@pytest.mark.parametrize(
    "names",
    [["a"], ["b"], ["r"], ["#text"], ["a", "c", "r"], ["missing"], "a,b"],
    ids=["child", "single-empty", "root", "text", "several", "missing", "comma-string"],
)
def test_force_list_matches_xmltodict(run, names) -> None:
    doc = b'<r id="1"><a x="2">t<b/>u</a><c>1</c><c>2</c>tail</r>'
    listed = tuple(names.split(",")) if isinstance(names, str) else tuple(names)
    expected = xmltodict.parse(doc, force_list=listed)
    assert json.loads(run(doc, options={"force_list": names})) == expected
    assert yaml.safe_load(run(doc, "yaml", {"force_list": names})) == expected


def test_force_list_on_a_root_without_children(run) -> None:
    doc = b'<r id="1">x</r>'
    out = json.loads(run(doc, options={"force_list": ["r"]}))
    assert out == {"r": [{"@id": "1", "#text": "x"}]}


def test_force_list_in_jsonl_records(run) -> None:
    doc = b"<r><row><t>1</t></row><row><t>2</t><t>3</t></row></r>"
    out = run(doc, "jsonl", {"record_path": "r/row", "force_list": ["t"]})
    assert [json.loads(line) for line in out.splitlines()] == [{"t": ["1"]}, {"t": ["2", "3"]}]


# -------------------------------------------------------------------- strip_whitespace


def test_strip_whitespace_false_keeps_whitespace_as_xmltodict_does(run) -> None:
    doc = b"<r>\n  <a>  padded  </a>\n  <b>   </b>\n  <c> x <d/> y </c>\n</r>"
    expected = xmltodict.parse(doc, strip_whitespace=False)
    out = json.loads(run(doc, options={"strip_whitespace": False}))
    assert out == expected
    assert out["r"]["a"] == "  padded  "
    assert out["r"]["b"] == "   "
    stripped = json.loads(run(doc))
    assert stripped == xmltodict.parse(doc)
    assert stripped["r"]["a"] == "padded" and stripped["r"]["b"] is None


# ------------------------------------------------------------------------------- types


def test_types_string_is_default_everything_is_a_string(run) -> None:
    doc = b'<r n="1"><i>2</i><f>1.5</f><b>true</b></r>'
    assert json.loads(run(doc)) == {"r": {"@n": "1", "i": "2", "f": "1.5", "b": "true"}}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("42", 42),
        ("-17", -17),
        ("9223372036854775807", 9223372036854775807),
        ("-9223372036854775808", -9223372036854775808),
        ("1.5", 1.5),
        ("-0.25", -0.25),
        ("3.0", 3.0),
        ("1e5", 100000.0),
        ("2.5E-3", 0.0025),
        ("true", True),
        ("false", False),
        # Strings that a number or boolean would change stay strings.
        ("007", "007"),
        ("+5", "+5"),
        ("1.", "1."),
        (".5", ".5"),
        ("9223372036854775808", "9223372036854775808"),
        ("123456789012345678901234567890", "123456789012345678901234567890"),
        ("1e400", "1e400"),
        ("True", "True"),
        ("TRUE", "TRUE"),
        ("yes", "yes"),
        ("null", "null"),
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("0x1F", "0x1F"),
        ("1_000", "1_000"),
        ("1,5", "1,5"),
        ("12:30", "12:30"),
        ("2026-11-25", "2026-11-25"),
    ],
)
def test_types_infer(run, text: str, value) -> None:
    doc = f'<r a="{text}"><v>{text}</v><v> {text} </v></r>'.encode()
    out = json.loads(run(doc, options={"types": "infer"}))["r"]
    assert out["@a"] == value and type(out["@a"]) is type(value)
    assert out["v"] == [value, value]
    assert all(type(v) is type(value) for v in out["v"])


def test_types_infer_keeps_whitespace_text_a_string_when_not_stripping(run) -> None:
    doc = b"<r><v> 5 </v><v>5</v></r>"
    out = json.loads(run(doc, options={"types": "infer", "strip_whitespace": False}))
    assert out == {"r": {"v": [" 5 ", 5]}}


# --------------------------------------------------------------------------- max_depth


def nested(levels: int) -> bytes:
    return b"<a>" * levels + b"x" + b"</a>" * levels


@pytest.mark.parametrize("fmt", ["json", "yaml", "jsonl", "csv", "text"])
def test_max_depth_custom_limit(run, fail, fmt: str) -> None:
    assert run(nested(10), fmt, {"max_depth": 10})  # exactly at the limit: fine
    error, _ = fail(nested(11), fmt, {"max_depth": 10})
    assert error.code == "DEPTH_LIMIT_EXCEEDED"
    assert "10" in error.message


@pytest.mark.parametrize("fmt", ["json", "yaml", "jsonl", "csv", "text"])
def test_max_depth_default_is_1000(run, fail, fmt: str) -> None:
    error, _ = fail(nested(1001), fmt)
    assert error.code == "DEPTH_LIMIT_EXCEEDED"
    assert "1000" in error.message


def load_deep(out: bytes, fmt: str):
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))  # the readers recurse per level too
    try:
        return json.loads(out) if fmt == "json" else yaml.safe_load(out)
    finally:
        sys.setrecursionlimit(limit)


def unwrap(value, levels: int):
    for _ in range(levels):
        assert isinstance(value, dict) and list(value) == ["a"]
        value = value["a"]
    return value


@pytest.mark.parametrize("fmt", ["json", "yaml", "jsonl", "csv", "text"])
@pytest.mark.parametrize("levels", [300, 1000])
def test_deep_documents_within_the_limit_convert(run, fmt: str, levels: int) -> None:
    """Nesting up to max_depth is legal, whatever a serializer's own recursion limit."""
    inner = levels - 2  # <r>, then the a's, the deepest at depth levels - 1
    doc = b"<r>" + nested(inner) + b"<b/></r>"
    out = run(doc, fmt)
    if fmt in ("json", "yaml"):
        value = load_deep(out, fmt)
        assert value["r"]["b"] is None
        assert unwrap({"a": value["r"]["a"]}, inner) == "x"
    elif fmt == "jsonl":  # no repeats: the root is the one record
        (record,) = [load_deep(line, "json") for line in out.splitlines()]
        assert record["b"] is None
        assert unwrap({"a": record["a"]}, inner) == "x"
    elif fmt == "csv":
        assert out == ".".join(["a"] * inner).encode() + b",b\r\nx,\r\n"
    else:
        assert out == b"x\n"


# --------------------------------------------------------------------- invalid options

INVALID = [
    ({"colour": "red"}, "colour"),
    ({"namespaces": "drop"}, "namespaces"),
    ({"namespaces": 1}, "namespaces"),
    ({"types": "numbers"}, "types"),
    ({"types": None}, "types"),
    ({"attr_prefix": 5}, "attr_prefix"),
    ({"attr_prefix": "x" * 65}, "attr_prefix"),
    ({"text_key": ""}, "text_key"),
    ({"text_key": ["#text"]}, "text_key"),
    ({"attr_prefix": "#", "text_key": "#"}, "text_key"),
    ({"force_list": 3}, "force_list"),
    ({"force_list": [1, 2]}, "force_list"),
    ({"force_list": {"a": 1}}, "force_list"),
    ({"strip_whitespace": "maybe"}, "strip_whitespace"),
    ({"strip_whitespace": 2}, "strip_whitespace"),
    ({"include_attributes": "sometimes"}, "include_attributes"),
    ({"indent": 9}, "indent"),
    ({"indent": -1}, "indent"),
    ({"indent": 100}, "indent"),
    ({"indent": "two"}, "indent"),
    ({"indent": 2.5}, "indent"),
    ({"indent": True}, "indent"),
    ({"max_depth": 0}, "max_depth"),
    ({"max_depth": -5}, "max_depth"),
    ({"max_depth": 10**6}, "max_depth"),
    ({"max_depth": "deep"}, "max_depth"),
    ({"max_depth": True}, "max_depth"),
    ({"record_path": "a//b"}, "record_path"),
    ({"record_path": "a b/c"}, "record_path"),
    ({"record_path": "/"}, "record_path"),
    ({"record_path": 5}, "record_path"),
    ({"record_path": ["a", "b"]}, "record_path"),
    ({"separator": ""}, "separator"),
    ({"separator": 0}, "separator"),
]


@pytest.mark.parametrize(("options", "option"), INVALID, ids=[repr(o) for o, _ in INVALID])
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_invalid_option_is_refused_naming_it(options, option: str, fmt: str) -> None:
    out = io.BytesIO()
    # The source would fail to parse: options are checked before anything is read.
    with pytest.raises(ConversionError) as caught:
        converter.convert(io.BytesIO(b"not xml"), out, fmt, options)
    error = caught.value
    assert error.code == "INVALID_OPTION"
    assert error.option == option
    assert option in error.message
    assert error.envelope()["error"]["details"] == {"option": option}
    assert out.getvalue() == b""


@pytest.mark.parametrize("fmt", ["xml", "JSONX", "", None, 5, "txt", "yml"])
def test_invalid_format_is_refused(fmt) -> None:
    out = io.BytesIO()
    with pytest.raises(ConversionError) as caught:
        converter.convert(io.BytesIO(b"<r/>"), out, fmt)
    assert caught.value.code == "INVALID_OPTION"
    assert caught.value.option == "format"
    assert out.getvalue() == b""


def test_options_given_as_strings_are_accepted() -> None:
    """HTTP forms and query strings carry every option as a string."""
    options = converter.parse_options(
        {
            "namespaces": " STRIP ",
            "types": "infer",
            "strip_whitespace": "false",
            "include_attributes": "yes",
            "indent": "4",
            "max_depth": "12",
            "force_list": "a, b,,c",
            "record_path": "/r/x/",
        }
    )
    assert options.namespaces == "strip" and options.types == "infer"
    assert options.strip_whitespace is False and options.include_attributes is True
    assert options.indent == 4 and options.max_depth == 12
    assert options.force_list == ("a", "b", "c")
    assert options.record_path == "r/x"
    assert converter.parse_format(" YAML ") == "yaml"


def test_options_accept_an_options_object_and_none(run) -> None:
    doc = b"<r><a>1</a></r>"
    assert run(doc, options=None) == run(doc, options={})
    out = io.BytesIO()
    converter.convert(io.BytesIO(doc), out, "json", converter.Options(force_list=("a",)))
    assert json.loads(out.getvalue()) == {"r": {"a": ["1"]}}
