"""Each output format as a user sees it: json, jsonl, csv, yaml and text.

xmltodict is the reference for values; yaml must load to exactly the json value.
"""

from __future__ import annotations

import csv
import io
import json
import re
from xml.sax.saxutils import escape, quoteattr

import pytest
import xmltodict
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

ORDERS = b"""<?xml version="1.0" encoding="UTF-8"?>
<orders xmlns:x="urn:x" generated="today">
  <order id="1">
    <customer><name>Ann, "A"</name><x:tier>gold</x:tier></customer>
    <price currency="EUR">12.50</price>
    <items><item sku="a"/><item sku="b"/></items>
    <note>line1
line2</note>
  </order>
  <order id="2">
    <customer><name>Bob</name></customer>
    <price>3</price>
    <items><item sku="c"/><item sku="d"/><item sku="e"/></items>
  </order>
  <order id="3"><extra>x</extra><price currency="USD"/></order>
</orders>
"""

CATALOG = b"""<catalog>
  <title>Spring</title>
  <products>
    <product id="p1"><name>Kettle</name><tag>home</tag><tag>tea</tag></product>
    <product id="p2"><name>Mug</name></product>
    <product id="p3"><name>Pot &amp; lid</name><tag>tea</tag></product>
  </products>
  <staff><person>Ann</person><person>Bob</person></staff>
</catalog>
"""


def jsonl_values(out: bytes) -> list:
    # Split on \n only: U+2028 / U+0085 may appear raw inside JSON strings.
    lines = out.split(b"\n")
    assert lines[-1] == b"", "every JSON Lines record ends with a newline"
    return [json.loads(line) for line in lines[:-1]]


def csv_rows(out: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(out.decode("utf-8"), newline="")))


# ------------------------------------------------------------------------------ json


def test_json_is_compact_by_default_and_equals_xmltodict(run) -> None:
    out = run(ORDERS)
    assert out.endswith(b"\n") and out.count(b"\n") == 1
    body = out[:-1]
    # Compact: no whitespace outside strings (the only newline in a string is escaped).
    outside_strings = re.sub(rb'"(?:[^"\\]|\\.)*"', b"", body)
    assert not re.search(rb"\s", outside_strings)
    assert json.loads(out) == xmltodict.parse(ORDERS)


@pytest.mark.parametrize("indent", [1, 2, 4, 8])
def test_json_indent_is_valid_json_equal_to_compact(run, indent: int) -> None:
    doc = (
        b'<r a="{x: [1, 2]}"><s>a, b: {c} [d]</s><q>say &quot;hi&quot; \\ back</q>'
        b"<e/><l>1</l><l>2</l><n><m>deep</m></n><t>line\nbreak\ttab</t></r>"
    )
    compact = json.loads(run(doc))
    pretty = run(doc, options={"indent": indent})
    assert json.loads(pretty) == compact
    # The layout json.dumps(indent=n) gives, to the byte.
    assert pretty.decode() == json.dumps(compact, indent=indent, ensure_ascii=False) + "\n"


def test_json_indent_zero_or_none_means_compact(run) -> None:
    compact = run(ORDERS)
    assert run(ORDERS, options={"indent": 0}) == compact
    assert run(ORDERS, options={"indent": None}) == compact
    assert run(ORDERS, options={"indent": "2"}) == run(ORDERS, options={"indent": 2})


def test_json_output_is_utf8_not_ascii_escaped(run) -> None:
    doc = "<r><t>é 中 😀</t></r>".encode()
    out = run(doc)
    assert "é 中 😀".encode() in out
    assert json.loads(out) == {"r": {"t": "é 中 😀"}}


# ----------------------------------------------------------------------------- jsonl


def test_jsonl_explicit_record_path(run_result) -> None:
    out, result = run_result(ORDERS, "jsonl", {"record_path": "orders/order"})
    expected = xmltodict.parse(ORDERS)["orders"]["order"]
    assert jsonl_values(out) == expected
    assert result.record_path == "orders/order"
    assert result.records == 3


def test_jsonl_nested_record_path(run_result) -> None:
    out, result = run_result(CATALOG, "jsonl", {"record_path": "catalog/products/product"})
    assert jsonl_values(out) == xmltodict.parse(CATALOG)["catalog"]["products"]["product"]
    assert [r["@id"] for r in jsonl_values(out)] == ["p1", "p2", "p3"]
    assert result.record_path == "catalog/products/product"
    assert result.records == 3


def test_jsonl_record_path_with_slashes_around_is_normalised(run_result) -> None:
    out, result = run_result(CATALOG, "jsonl", {"record_path": "/catalog/products/product/"})
    assert len(jsonl_values(out)) == 3
    assert result.record_path == "catalog/products/product"


def test_jsonl_record_path_below_every_record(run_result) -> None:
    """Records two levels below each repeated element, across several parents."""
    out, result = run_result(ORDERS, "jsonl", {"record_path": "orders/order/items/item"})
    assert jsonl_values(out) == [{"@sku": s} for s in "abcde"]
    assert result.records == 5


def test_jsonl_auto_pick_chooses_most_repeated_element(run_result) -> None:
    # person repeats twice, product three times: product wins wherever it sits.
    out, result = run_result(CATALOG, "jsonl")
    assert result.record_path == "catalog/products/product"
    assert jsonl_values(out) == xmltodict.parse(CATALOG)["catalog"]["products"]["product"]


def test_jsonl_auto_pick_reports_the_path_it_picked(run_result) -> None:
    doc = b"<feed><meta><a/><a/></meta>" + b"<entry><t>1</t></entry>" * 5 + b"</feed>"
    out, result = run_result(doc, "jsonl")
    assert result.record_path == "feed/entry"
    assert result.records == 5
    assert jsonl_values(out) == [{"t": "1"}] * 5


def test_jsonl_without_repeats_is_one_record_of_the_root(run_result) -> None:
    doc = b'<r a="1"><b>x</b><c/></r>'
    out, result = run_result(doc, "jsonl")
    assert result.record_path == "r"
    assert jsonl_values(out) == [xmltodict.parse(doc)["r"]]


def test_jsonl_record_path_names_keys_as_the_namespace_mode_writes_them(run, fail) -> None:
    doc = b'<p:r xmlns:p="urn:p"><p:a>1</p:a><p:a>2</p:a></p:r>'
    assert jsonl_values(run(doc, "jsonl", {"record_path": "p:r/p:a"})) == ["1", "2"]
    options = {"record_path": "r/a", "namespaces": "strip"}
    assert jsonl_values(run(doc, "jsonl", options)) == ["1", "2"]
    # expand: keys hold URIs, which a slash path cannot spell; local names match.
    options = {"record_path": "r/a", "namespaces": "expand"}
    assert jsonl_values(run(doc, "jsonl", options)) == ["1", "2"]
    # keep: the key is "p:a", so "r/a" names nothing.
    error, _ = fail(doc, "jsonl", {"record_path": "r/a"})
    assert error.code == "RECORD_NOT_FOUND"


def test_jsonl_keeps_raw_line_separators_inside_one_line(run) -> None:
    doc = "<r><a>x\u2028y\x85z</a><a>2</a></r>".encode()
    assert jsonl_values(run(doc, "jsonl", {"record_path": "r/a"})) == ["x\u2028y\x85z", "2"]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize(
    "path", ["orders/nothing", "nothing/order", "orders/order/nothing", "order"]
)
def test_record_path_matching_nothing_is_record_not_found(fail, fmt: str, path: str) -> None:
    error, _ = fail(ORDERS, fmt, {"record_path": path})
    assert error.code == "RECORD_NOT_FOUND"
    assert path in error.message


# ------------------------------------------------------------------------------- csv


def test_csv_header_columns_and_rows(run_result) -> None:
    out, result = run_result(ORDERS, "csv", {"record_path": "orders/order"})
    rows = csv_rows(out)
    assert rows[0] == [
        "@id",
        "customer.name",
        "customer.x:tier",
        "price.@currency",  # first seen in order 1, before its text
        "price.#text",
        "items.item.0.@sku",
        "items.item.1.@sku",
        "items.item.2.@sku",
        "note",
        "extra",
    ]
    assert rows[1:] == [
        ["1", 'Ann, "A"', "gold", "EUR", "12.50", "a", "b", "", "line1\nline2", ""],
        ["2", "Bob", "", "", "3", "c", "d", "e", "", ""],
        ["3", "", "", "USD", "", "", "", "", "", "x"],
    ]
    assert result.records == 3
    assert result.record_path == "orders/order"


def test_csv_is_rfc4180_crlf_with_minimal_quoting(run) -> None:
    out = run(ORDERS, "csv", {"record_path": "orders/order"}).decode()
    lines = out.split("\r\n")
    assert lines[-1] == "", "the last row ends with CRLF"
    # Bare LF only inside the quoted multi-line cell.
    assert out.replace("\r\n", "").count("\n") == 1
    assert '"line1\nline2"' in out
    assert lines[0].startswith("@id,customer.name,customer.x:tier,price.")
    # Commas and quotes force quoting (quotes doubled); plain values are not quoted.
    assert lines[1].startswith('1,"Ann, ""A""",gold,')
    assert ",12.50," in lines[1] and ",EUR," in lines[1]
    assert lines[2].startswith("2,Bob,,")
    assert lines[3].startswith("3,,,") and lines[3].endswith(",x")
    assert '"' not in lines[0] + lines[2] + lines[3]


def test_csv_auto_pick_uses_most_repeated_element(run_result) -> None:
    out, result = run_result(CATALOG, "csv")
    assert result.record_path == "catalog/products/product"
    rows = csv_rows(out)
    assert rows[0] == ["@id", "name", "tag.0", "tag.1"]
    assert rows[1:] == [
        ["p1", "Kettle", "home", "tea"],
        ["p2", "Mug", "", ""],
        ["p3", "Pot & lid", "tea", ""],
    ]


def test_csv_columns_in_first_seen_order_across_records(run) -> None:
    doc = b"<r><x><b>1</b></x><x><a>2</a><b>3</b></x><x><c>4</c><a>5</a></x></r>"
    rows = csv_rows(run(doc, "csv", {"record_path": "r/x"}))
    assert rows == [["b", "a", "c"], ["1", "", ""], ["3", "2", ""], ["", "5", "4"]]


def test_csv_text_in_one_record_attributes_in_another(run) -> None:
    doc = b'<r><x><v>1</v></x><x><v unit="kg"/></x><x><v unit="g">3</v></x></r>'
    rows = csv_rows(run(doc, "csv", {"record_path": "r/x"}))
    assert rows == [["v.#text", "v.@unit"], ["1", ""], ["", "kg"], ["3", "g"]]


def test_csv_repeated_children_numbered_up_to_most_seen(run) -> None:
    doc = (
        b"<r>"
        b'<o><items><item sku="a" n="1"/></items></o>'
        b'<o><items><item sku="b"/><item sku="c" n="2"/><item sku="d"/></items></o>'
        b'<o><items><item sku="f"/></items></o>'
        b"</r>"
    )
    rows = csv_rows(run(doc, "csv", {"record_path": "r/o"}))
    assert rows[0] == [
        "items.item.0.@sku",
        "items.item.0.@n",
        "items.item.1.@sku",
        "items.item.1.@n",
        "items.item.2.@sku",
        "items.item.2.@n",  # every numbered item has every item column
    ]
    assert rows[1:] == [
        ["a", "1", "", "", "", ""],
        ["b", "", "c", "2", "d", ""],
        ["f", "", "", "", "", ""],  # a single item is item 0
    ]


def test_csv_quotes_fields_with_newlines_quotes_and_commas_and_reads_back(run) -> None:
    values = ["plain", "com,ma", 'qu"ote', "new\nline", "cr\r\nlf", " spaced ", "é中😀", ""]
    body = "".join(f"<row><v>{escape(v)}</v></row>" for v in values)
    doc = f"<r>{body}</r>".encode()
    out = run(doc, "csv", {"record_path": "r/row", "strip_whitespace": False})
    rows = csv_rows(out)
    # XML turns a literal CR LF into LF.
    assert rows == [["v"]] + [[v.replace("\r\n", "\n")] for v in values]
    raw = out.decode()
    assert "\r\nplain\r\n" in raw
    assert '\r\n"com,ma"\r\n' in raw
    assert '\r\n"qu""ote"\r\n' in raw


def test_csv_custom_prefix_and_text_key_name_the_columns(run) -> None:
    doc = b'<r><p cur="EUR">1</p><p>2</p></r>'
    rows = csv_rows(run(doc, "csv", {"attr_prefix": "_", "text_key": "value"}))
    # First-seen order: the attribute comes before the text in the first record.
    assert rows == [["_cur", "value"], ["EUR", "1"], ["", "2"]]


def test_csv_inferred_types_are_written_as_text(run) -> None:
    doc = b"<r><x><n>7</n><f>1.5</f><b>true</b><s>007</s></x><x><b>false</b></x></r>"
    rows = csv_rows(run(doc, "csv", {"record_path": "r/x", "types": "infer"}))
    assert rows == [["n", "f", "b", "s"], ["7", "1.5", "true", "007"], ["", "", "false", ""]]


# ------------------------------------------------------------------------------ yaml

TRICKY_STRINGS = [
    "yes", "no", "on", "off", "y", "n", "Yes", "NO", "True", "false", "null", "Null", "~",
    "123", "007", "-1", "+1", ".5", "1e5", "1.5e-3", "0x1F", "0o17", "0b101", "1_000",
    ".inf", "-.inf", ".nan", "2026-11-25", "2026-11-25T10:00:00Z", "12:30", "1:20:30",
    " leading", "trailing ", "a: b", "a:b", "a #b", "#hash", ": colon", "-", "- dash", "? q",
    "[a]", "{a}", "*ref", "&anchor", "!tag", "%dir", "@at", "`tick", "|", ">", "=", "<<",
    "---", "...", ",", '"double"', "'single'", "it's", 'back\\slash', "back\\", "tab\there",
    "new\nline", "two\n\nlines", "nel\x85x", "ls\u2028x", "ps\u2029x", "del\x7fx",
    "c1\x9fx", "emoji 😀", "中文", "\ue000private", "\ufeffbom", "",
]


def tricky_document(values: list[str]) -> bytes:
    parts = [f"<t{i} v={quoteattr(v)}>{escape(v)}</t{i}>" for i, v in enumerate(values)]
    parts += [f"<s>{escape(v)}</s>" for v in values]  # the same strings as list items
    parts.append('<e a=""/>')
    return ("<r>" + "".join(parts) + "</r>").encode()


@pytest.mark.parametrize("options", [{}, {"strip_whitespace": False}])
def test_yaml_round_trips_tricky_strings(run, options) -> None:
    doc = tricky_document(TRICKY_STRINGS)
    expected = json.loads(run(doc, "json", options))
    loaded = yaml.safe_load(run(doc, "yaml", options))
    assert loaded == expected
    # The strings really are there, untouched by YAML's resolvers.
    r = loaded["r"]
    for i, value in enumerate(TRICKY_STRINGS):
        text = value if options else value.strip()
        item = r[f"t{i}"]
        assert item["@v"] == value, value
        assert item.get("#text") == (text or None), value
    assert r["e"] == {"@a": ""}


@pytest.mark.parametrize("value", TRICKY_STRINGS)
def test_yaml_single_tricky_string_as_whole_document(run, value: str) -> None:
    """A root without children is written in one piece, not through frames."""
    doc = f"<r v={quoteattr(value)}>{escape(value)}</r>".encode()
    out = run(doc, "yaml", {"strip_whitespace": False})
    assert yaml.safe_load(out) == json.loads(run(doc, "json", {"strip_whitespace": False}))


def test_yaml_with_inferred_types(run) -> None:
    values = ["1", "-2", "0", "1.5", "-0.25", "1e5", "2.5E-7", "1.5e300", "true", "false",
              "9223372036854775807", "007", "+5", "1.", "1e400", "yes", "null", "~"]
    doc = ("<r>" + "".join(f'<v a="{v}">{v}</v>' for v in values) + "</r>").encode()
    expected = json.loads(run(doc, "json", {"types": "infer"}))
    loaded = yaml.safe_load(run(doc, "yaml", {"types": "infer"}))
    assert loaded == expected
    texts = [item["#text"] for item in loaded["r"]["v"]]
    assert texts[:10] == [1, -2, 0, 1.5, -0.25, 100000.0, 2.5e-7, 1.5e300, True, False]
    assert all(type(t) is not str for t in texts[:10])
    assert texts[10] == 9223372036854775807
    assert texts[11:] == ["007", "+5", "1.", "1e400", "yes", "null", "~"]


def test_yaml_tricky_element_names_as_keys(run) -> None:
    names = ["yes", "no", "on", "null", "true", "y", "N", "_1", "a.b", "a-b", "x:y", "é"]
    doc = ("<r xmlns:x='urn:x'>" + "".join(f"<{n}>v</{n}>" for n in names) + "</r>").encode()
    for options in ({}, {"namespaces": "expand"}, {"namespaces": "strip"}):
        loaded = yaml.safe_load(run(doc, "yaml", options))
        assert loaded == json.loads(run(doc, "json", options))
        assert all(isinstance(key, str) for key in loaded["r"])


def _flow_collections(data: bytes) -> list:
    return [
        event
        for event in yaml.parse(data.decode())
        if isinstance(event, yaml.CollectionStartEvent) and event.flow_style
    ]


@pytest.mark.parametrize("doc", [ORDERS, CATALOG, b"<r><a/><a>1</a><b><c>x</c></b></r>"])
def test_yaml_is_block_style(run, doc: bytes) -> None:
    out = run(doc, "yaml")
    assert yaml.safe_load(out) == json.loads(run(doc))
    assert _flow_collections(out) == []
    assert not re.search(rb"^\s*(- )?[^\"'\n]*: [\[{]", out, re.MULTILINE)


def test_yaml_equals_json_for_orders(run) -> None:
    assert yaml.safe_load(run(ORDERS, "yaml")) == xmltodict.parse(ORDERS)


# ------------------------------------------------------------------------------ text

TEXT_DOC = b"""<?xml version="1.0"?><?pi before?><!--c0-->
<r id="R"><a x="1" y="2">  hello  </a><!-- not me --><?pi not me?>
<b><![CDATA[ <cdata> & more ]]></b>mixed <i k="v">italic</i> tail
<c/><d q="only-attr"/><e>   </e><f>&lt;&amp;&#65;</f></r><!--after-->"""


def test_text_one_stripped_text_node_per_line(run) -> None:
    out = run(TEXT_DOC, "text").decode()
    assert out.split("\n") == ["hello", "<cdata> & more", "mixed", "italic", "tail", "<&A", ""]
    assert "not me" not in out and "c0" not in out and "after" not in out


def test_text_custom_separator(run) -> None:
    out = run(TEXT_DOC, "text", {"separator": " | "}).decode()
    pieces = out.removesuffix(" | ").split(" | ")
    assert pieces == ["hello", "<cdata> & more", "mixed", "italic", "tail", "<&A"]
    assert "\n" not in out


def test_text_include_attributes_puts_attribute_values_before_text(run) -> None:
    out = run(TEXT_DOC, "text", {"include_attributes": True}).decode()
    assert out.split("\n") == [
        "R", "1", "2", "hello", "<cdata> & more", "mixed", "v", "italic", "tail",
        "only-attr", "<&A", "",
    ]


def test_text_of_nested_and_repeated_elements_in_document_order(run) -> None:
    doc = b"<r>a<x>b<y>c</y>d</x>e<x>f</x>g</r>"
    assert run(doc, "text") == b"a\nb\nc\nd\ne\nf\ng\n"


def test_text_of_document_without_text_is_empty(run) -> None:
    assert run(b'<r><a x="1"/><b> </b></r>', "text") == b""


# The C YAML writer (converter/_emit.pyx) against the layout it implements
# (render.YamlRenderer._item/_entries, in Python), on values as the engine makes them.
_YAML_TEXT = st.text(st.sampled_from("aZ_09 .-/:#'\"\\\t\n\x7f\x01yYnNoO"), max_size=8)
_YAML_TEXT |= st.sampled_from([
    "y", "No", "ON", "off", "true", "NULL", "a b", "a  b", "a:b", "a:", ":a", "a::b", "_x", "1a",
    "é", "中 b", "a\u2028b", "\x85", "x y:z w", "-a", "a- b", " a", "a "])
_YAML_SCALAR = _YAML_TEXT | st.none() | st.booleans() | st.integers() | st.floats(
    allow_nan=False, allow_infinity=False)
_YAML_VALUE = st.recursive(
    _YAML_SCALAR,
    lambda inner: st.dictionaries(_YAML_TEXT, inner | st.lists(inner, min_size=2, max_size=3),
                                  min_size=1, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(value=_YAML_VALUE, level=st.integers(0, 3))
def test_c_yaml_writer_matches_the_python_layout(value, level) -> None:
    from converter.render import YamlRenderer

    renderer = YamlRenderer()
    assert renderer.item(value, level) == renderer.python_item(value, level)
    assert renderer.items([value, value], level) == renderer.python_item(value, level) * 2


_JSON_TEXT = st.text(st.sampled_from('a,[]{}"\\:\n\u2028é'), max_size=6)
_JSON_VALUE = st.recursive(
    _JSON_TEXT | st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1),
    lambda inner: st.dictionaries(_JSON_TEXT, inner, max_size=3) | st.lists(inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(records=st.lists(_JSON_VALUE, max_size=5))
def test_json_lines_from_one_array_equal_one_dump_per_record(records) -> None:
    import orjson
    from converter._emit import json_lines

    expected = b"".join(orjson.dumps(record) + b"\n" for record in records)
    assert json_lines(orjson.dumps(records)) == expected
