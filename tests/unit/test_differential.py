"""Differential tests: the engine's json / jsonl / yaml output against xmltodict 1.0.4.

The contract (see converter/): json output == xmltodict.parse(doc) with the matching
options; jsonl lines == xmltodict's values of the record elements, in document order;
yaml.safe_load(yaml output) == json.loads(json output).

(a) A hand-written corpus of varied documents, each converted under several option sets.
(b) Hypothesis-generated documents: random trees over a tiny name alphabet (so repeats,
    and non-adjacent repeats, are frequent), with attributes, mixed text, unicode,
    prefixed and default namespaces, CDATA, comments and PIs, serialized here with
    proper escaping.

No document has entity declarations: the engine refuses them, and so does xmltodict.
"""

from __future__ import annotations

import codecs
import importlib.util
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from xml.parsers.expat import ExpatError

import pytest
import xmltodict
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import converter

REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- helpers


def run(doc: bytes, fmt: str, options: Mapping[str, Any] | None = None) -> tuple[bytes, Any]:
    out = io.BytesIO()
    # converter.convert loads the engine on first use (a missing engine fails the tests
    # that convert, not the collection of this module).
    result = converter.convert(io.BytesIO(doc), out, fmt, dict(options or {}), None)
    return out.getvalue(), result


def ours_json(doc: bytes, options: Mapping[str, Any] | None = None) -> Any:
    data, result = run(doc, "json", options)
    assert result.format == "json"
    return json.loads(data)


def ours_jsonl(doc: bytes, options: Mapping[str, Any] | None = None) -> tuple[list[Any], Any]:
    data, result = run(doc, "jsonl", options)
    assert result.format == "jsonl"
    # Split on b"\n" only: str.splitlines() would also split inside strings holding
    # U+2028, U+0085 and friends, which JSON may carry unescaped.
    lines = data.split(b"\n")
    assert lines[-1] == b"", "jsonl output must end with a newline"
    values = [json.loads(line) for line in lines[:-1]]
    assert result.records == len(values)
    return values, result


def ours_yaml(doc: bytes, options: Mapping[str, Any] | None = None) -> Any:
    data, result = run(doc, "yaml", options)
    assert result.format == "yaml"
    return yaml.safe_load(data)


def records_at(tree: Any, path: str) -> list[Any]:
    """xmltodict's values of the elements at `path` ('root/a/rec'), in document order."""
    nodes = [tree]
    for name in path.split("/"):
        found = []
        for node in nodes:
            if isinstance(node, dict) and name in node:
                value = node[name]
                found.extend(value if isinstance(value, list) else [value])
        nodes = found
    return nodes


# Option sets: (engine options, the matching xmltodict.parse keyword arguments).
FORCE = ("a", "b", "item", "p:a", "row", "tag", "n:x")
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "default": ({}, {}),
    "expand": ({"namespaces": "expand"}, {"process_namespaces": True}),
    "force_list": ({"force_list": list(FORCE)}, {"force_list": FORCE}),
    "prefix_dash": (
        {"attr_prefix": "-", "text_key": "_text"},
        {"attr_prefix": "-", "cdata_key": "_text"},
    ),
    "prefix_under": (
        {"attr_prefix": "_", "text_key": "#value"},
        {"attr_prefix": "_", "cdata_key": "#value"},
    ),
    "keep_whitespace": ({"strip_whitespace": False}, {"strip_whitespace": False}),
}
# jsonl records are named by their keep-mode path, so expand is not used there.
JSONL_VARIANTS = ("default", "force_list", "prefix_dash", "keep_whitespace")


# --------------------------------------------------------------------------- corpus


def _deep(levels: int) -> bytes:
    opens = "".join(f'<d{i} level="{i}">' for i in range(levels))
    closes = "".join(f"</d{i}>" for i in reversed(range(levels)))
    return f"<root>{opens}deep &amp; down{closes}<tail/></root>".encode()


def _same_name_deep(levels: int) -> bytes:
    return ("<n>" * levels + "x" + "</n>" * levels).encode()


def _records(count: int) -> bytes:
    rows = []
    for i in range(count):
        parts = [f'  <row id="{i}"' + (' kind="special"' if i % 7 == 0 else "") + ">"]
        if i % 10:
            parts.append(f"<name>Name {i} &amp; co</name>")
        if i % 3 == 0:
            parts.append(f"<score>{i * 1.5}</score>")
        if i % 5 == 0:
            parts.append("<tag>a</tag><note/><tag>b</tag>")
        elif i % 4 == 0:
            parts.append("<tag>only</tag>")
        if i % 11 == 0:
            parts.append("<empty></empty>")
        if i % 13 == 0:
            parts.append("text in a row")
        parts.append("</row>")
        rows.append("".join(parts))
    body = "\n".join(rows)
    return f'<?xml version="1.0"?>\n<rows count="{count}">\n{body}\n</rows>\n'.encode()


def _generated_orders() -> bytes:
    spec = importlib.util.spec_from_file_location("bench_generate", REPO / "bench" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = io.BytesIO()
    module.generate_to(out, 0.05)
    return out.getvalue()


UTF16_DOC = '<?xml version="1.0" encoding="UTF-16"?>\n<r a="ä"><t>é ü 中 😀</t><t/></r>\n'
LATIN1_DOC = '<?xml version="1.0" encoding="ISO-8859-1"?>\n<r a="café">naïve ß ÿ ©<b>é</b></r>'

# (id, document, record path for jsonl or None)
CORPUS: list[tuple[str, bytes, str | None]] = [
    ("text_only", b"<a>hello</a>", None),
    ("empty_self_closing", b"<a/>", None),
    ("empty_pair", b"<a></a>", None),
    ("empties_nested", b"<r><a/><b></b><c> </c><d>\n\t</d></r>", "r/b"),
    ("attributes_no_text", b'<r><e x="1" y=""/><e x="2"></e></r>', "r/e"),
    ("attributes_with_text", b'<r><price currency="EUR">12.50</price></r>', "r/price"),
    ("attributes_whitespace_text", b'<r><e x="1">   </e><e x="2"> y </e></r>', "r/e"),
    ("single_quoted_spaced_attrs", b"<r a='1' b = \"2\"  c='&apos;\"'/>", None),
    ("repeats_root_level", b"<a><b/><c/><b/></a>", "a/b"),
    (
        "repeats_nested_non_adjacent",
        b"<r><x><b>1</b><c>2</c><b>3</b><c>4</c><d/><b><z/></b></x><x><b>5</b></x></r>",
        "r/x/b",
    ),
    ("repeats_mixed_shapes", b'<r><i>1</i><i a="x"/><i><j>2</j></i><i/><i a="y">3</i></r>', "r/i"),
    ("mixed_content", b"<p>Hello <b>big</b> world<i>!</i> end </p>", None),
    ("mixed_content_attrs", b'<p a="1">  lead <b/> mid <b/> tail  </p>', "p/b"),
    ("text_after_children", b"<r><a/>tail</r>", None),
    (
        "cdata",
        b"<r><c><![CDATA[<not> & markup]]></c><d>a<![CDATA[b]]>c</d><e><![CDATA[]]></e>"
        b"<f><![CDATA[  ]]></f><g> <![CDATA[x]]> </g><h><![CDATA[]]]]><![CDATA[>]]></h></r>",
        None,
    ),
    (
        "comments",
        b"<!-- before --><r><!--c1--><a>x<!--in-->y</a><!--c2--><b><!--only--></b>"
        b"<c> <!-- c --> </c></r><!-- after -->",
        None,
    ),
    (
        "processing_instructions",
        b'<?xml version="1.0"?><?pi before?><r><?pi inside?><a>1<?pi mid?>2</a>'
        b"<b><?pi?></b></r><?pi after?>",
        None,
    ),
    ("prolog_whitespace", b"\n\n<?pi x?>\n<!-- c -->\n<r>x</r>\n\n<!-- end -->\n", None),
    (
        "predefined_entities",
        b'<r a="&lt;&amp;&gt;&quot;&apos;">&lt;tag&gt; &amp; &quot;q&quot; &apos;s&apos;</r>',
        None,
    ),
    (
        "char_refs",
        b'<r><a>&#65;&#x42;&#x4E2D;&#x1F600;</a><b x="&#9;&#10;&#13;">&#13;&#10;</b>'
        b"<c>&#160;x&#160;</c><d>a]]&gt;b</d></r>",
        None,
    ),
    ("whitespace_only", b"<r>\n  <a>   </a>\n  <b>\t\n</b>\n  <c> <d/> </c>\n</r>", "r/a"),
    (
        "unicode_whitespace_around_text",
        "<r><a>\u00a0x\u00a0</a><b>\u3000</b><c>\u2003y\u2028</c><d>\x85z\x85</d></r>".encode(),
        None,
    ),
    ("crlf_line_endings", b"<r>\r\n<a>x\r\ny</a>\r\n<b>\r</b>\r\n</r>", None),
    (
        "attribute_normalization",
        b'<r a="x\ny\tz" b="  spaced  " c="&#10;kept&#9;" d="\r\n"/>',
        None,
    ),
    (
        "pretty_printed",
        b"""<?xml version="1.0" encoding="UTF-8"?>
<library>
    <book id="1" lang="en">
        <title>XML &amp; You</title>
        <author>A. Writer</author>
        <author>B. Writer</author>
        <year>2001</year>
    </book>
    <book id="2">
        <title>Second</title>
        <author>C. Writer</author>
    </book>
</library>
""",
        "library/book",
    ),
    (
        "default_namespace",
        b'<r xmlns="urn:d"><a>1</a><b x="1"/><a>2</a></r>',
        "r/a",
    ),
    ("prefixed_namespace", b'<p:r xmlns:p="urn:p"><p:a>1</p:a><b/><p:a/></p:r>', "p:r/p:a"),
    (
        "prefixed_attributes",
        b'<r xmlns="urn:d" xmlns:x="urn:x" x:id="7" id="8"><x:a x:k="v" k="w">t</x:a><a/>'
        b"<x:a>u</x:a></r>",
        "r/x:a",
    ),
    (
        "redeclared_prefix",
        b'<r xmlns:p="urn:1"><p:a/><s xmlns:p="urn:2"><p:a/><p:b p:at="z"/></s><p:a x="1"/></r>',
        "r/p:a",
    ),
    (
        "redeclared_and_undeclared_default",
        b'<r xmlns="urn:1"><a/><s xmlns="urn:2"><a/><a/></s><t xmlns=""><a/></t></r>',
        "r/s",
    ),
    (
        "two_prefixes_one_uri",
        b'<r xmlns:p="urn:same" xmlns:q="urn:same"><p:a q:x="1"/><q:a p:y="2"/><p:a/></r>',
        "r/p:a",
    ),
    (
        "redundant_redeclaration",
        b'<a xmlns="urn:one" xmlns:p="urn:p"><a xmlns="urn:one"><p:b xmlns:p="urn:p"/></a>'
        b'<p:b xmlns:p="urn:p"/></a>',
        "a/a",
    ),
    (
        "prefixed_sibling_with_same_local_name",
        b'<r xmlns:p="urn:p"><a>1</a><p:a>2</p:a><a>3</a><p:a>4</p:a></r>',
        "r/a",
    ),
    (
        "namespace_declared_on_child",
        b'<r><c xmlns:n="urn:n"><n:x>1</n:x><n:x>2</n:x></c><c><x>3</x></c></r>',
        "r/c",
    ),
    (
        "xml_lang_and_space",
        b'<r xml:lang="en"><t xml:lang="fr">bonjour</t><t xml:space="preserve">  x  </t></r>',
        "r/t",
    ),
    ("xml_id", b'<r xml:id="r1"><a xml:id="1">x</a><a xml:id="two words"/></r>', None),
    (
        "xhtml_with_public_doctype",
        b'<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN"'
        b' "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n'
        b'<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en"><head><title>T</title>'
        b"</head><body><p>One <em>two</em></p><p>Three</p></body></html>",
        "html/body/p",
    ),
    (
        "doctype_system_id",
        b'<?xml version="1.0"?>\n<!DOCTYPE r SYSTEM "http://example.invalid/r.dtd">\n'
        b"<r><a>1</a><a>2</a></r>",
        "r/a",
    ),
    (
        "doctype_system_id_undeclared_entity_reference",
        b'<!DOCTYPE r SYSTEM "r.dtd"><r><b>&e;</b><a>x&e;y</a><c>&e;v</c><a>z&e;</a></r>',
        "r/a",
    ),
    (
        "doctype_internal_subset_attribute_default",
        b'<!DOCTYPE r [\n<!ELEMENT r (a*)>\n<!ATTLIST a kind CDATA "plain">\n]>\n'
        b'<r><a/><a kind="x">t</a></r>',
        "r/a",
    ),
    (
        "utf8_declared_non_ascii",
        '<?xml version="1.0" encoding="UTF-8"?><r><t>é ü 中 😀</t><t a="ß">Ω</t></r>'.encode(),
        "r/t",
    ),
    (
        "astral_characters_next_to_escaped_ones",
        '<r><a>x\u2028😀</a><b c="\x85𝄞">\u2029中😀\x85</b><a>\t😀\x7f</a></r>'.encode(),
        "r/a",
    ),
    ("utf8_bom", codecs.BOM_UTF8 + "<r><t>é</t><t>中</t></r>".encode(), "r/t"),
    ("utf16_bom_le", codecs.BOM_UTF16_LE + UTF16_DOC.encode("utf-16-le"), "r/t"),
    ("utf16_bom_be", codecs.BOM_UTF16_BE + UTF16_DOC.encode("utf-16-be"), "r/t"),
    ("iso_8859_1", LATIN1_DOC.encode("latin-1"), None),
    (
        "unusual_names",
        "<r><a.b>1</a.b><c-d>2</c-d><_e>3</_e><f1>4</f1><名前>5</名前><a.b>6</a.b></r>".encode(),
        "r/a.b",
    ),
    (
        "numbers_stay_strings",
        b"<r><n>1</n><f>1.5</f><b>true</b><z>null</z><e>0</e><neg>-0</neg><x>1e3</x></r>",
        None,
    ),
    (
        "long_text_many_attributes",
        (
            "<r "
            + " ".join(f'a{i}="v{i}"' for i in range(60))
            + ">"
            + "lorem ipsum &amp; dolor " * 4000
            + "</r>"
        ).encode(),
        None,
    ),
    ("root_attributes_and_namespace_only", b'<r xmlns="urn:x" a="1"/>', None),
    ("deep_nesting_50", _deep(50), None),
    ("deep_same_name_60", _same_name_deep(60), None),
    ("many_records", _records(500), "rows/row"),
    ("generated_orders", _generated_orders(), "orders/order"),
]
CORPUS_IDS = [c[0] for c in CORPUS]
JSONL_CORPUS = [c for c in CORPUS if c[2] is not None]


def test_corpus_is_well_formed_and_big_enough() -> None:
    assert len(CORPUS) >= 40
    assert len(set(CORPUS_IDS)) == len(CORPUS_IDS)
    for name, doc, _ in CORPUS:
        assert xmltodict.parse(doc) is not None, name


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize(("name", "doc", "record_path"), CORPUS, ids=CORPUS_IDS)
def test_corpus_json_matches_xmltodict(
    name: str, doc: bytes, record_path: str | None, variant: str
) -> None:
    options, kwargs = VARIANTS[variant]
    assert ours_json(doc, options) == xmltodict.parse(doc, **kwargs)


@pytest.mark.parametrize("variant", ["default", "keep_whitespace"])
@pytest.mark.parametrize(("name", "doc", "record_path"), CORPUS, ids=CORPUS_IDS)
def test_corpus_yaml_equals_json(
    name: str, doc: bytes, record_path: str | None, variant: str
) -> None:
    options, _ = VARIANTS[variant]
    assert ours_yaml(doc, options) == ours_json(doc, options)


@pytest.mark.parametrize("variant", JSONL_VARIANTS)
@pytest.mark.parametrize(
    ("name", "doc", "record_path"), JSONL_CORPUS, ids=[c[0] for c in JSONL_CORPUS]
)
def test_corpus_jsonl_matches_xmltodict_records(
    name: str, doc: bytes, record_path: str, variant: str
) -> None:
    options, kwargs = VARIANTS[variant]
    lines, result = ours_jsonl(doc, {**options, "record_path": record_path})
    expected = records_at(xmltodict.parse(doc, **kwargs), record_path)
    assert expected, "the corpus names a record path that exists"
    assert lines == expected
    assert result.record_path == record_path


# Documents whose record element is unambiguous under any reasonable "most frequent
# repeating element" rule: every other path occurs fewer times than the records.
AUTO_PICK = [
    ("many_records", _records(500), "rows/row"),
    (
        "feed_entries",
        (
            "<feed><meta><title>f</title></meta><entries>"
            + "".join(
                f'<entry n="{i}"><title>t{i}</title>' + ("<link/>" if i % 2 else "") + "</entry>"
                for i in range(30)
            )
            + "</entries></feed>"
        ).encode(),
        "feed/entries/entry",
    ),
    (
        "namespaced_orders",
        (
            '<orders xmlns="urn:o" xmlns:x="urn:x">'
            + "".join(
                f'<order id="{i}">' + (f"<x:flag>{i}</x:flag>" if i % 3 else "") + "</order>"
                for i in range(12)
            )
            + "<summary/></orders>"
        ).encode(),
        "orders/order",
    ),
    ("non_adjacent", b"<a><b>1</b><c/><b>2</b><b/><d><e/></d><b>3</b></a>", "a/b"),
]


@pytest.mark.parametrize(("name", "doc", "expected_path"), AUTO_PICK, ids=[a[0] for a in AUTO_PICK])
def test_jsonl_auto_record_path(name: str, doc: bytes, expected_path: str) -> None:
    lines, result = ours_jsonl(doc)
    assert result.record_path == expected_path
    assert lines == records_at(xmltodict.parse(doc), expected_path)


# --------------------------------------------------------------------------- hypothesis

NAMES = ("a", "b", "c")
ATTR_NAMES = ("a", "b", "id", "x")
PREFIXES = ("p", "q")
URIS = ("urn:one", "urn:two", "http://example.com/ns#three")
XML_NS = "http://www.w3.org/XML/1998/namespace"

_xml_char = st.characters(min_codepoint=0x20, blacklist_categories=("Cs",)).filter(
    lambda c: c not in "\ufffe\uffff"
)
_special = st.sampled_from(
    [" ", "  ", "\t", "\n", "\r\n", "\r", "&", "<", ">", '"', "'", "]]>", "&amp;", "\xa0",
     "\u3000", "\u2028", "\x85", "é", "中", "😀", "x", "y"]
)
TEXT = st.lists(st.one_of(_special, _xml_char), max_size=6).map("".join)
SAFE_TEXT = st.text(st.sampled_from("abc xyzé中?>-"), max_size=8)


def _escape_text(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace("\r", "&#13;")
    )


def _escape_attr(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
        .replace("\t", "&#9;").replace("\n", "&#10;").replace("\r", "&#13;")
    )


def _comment(text: str) -> str:
    text = text.replace("-", "_")
    return f"<!--{text}-->"


def _pi(text: str) -> str:
    return "<?pi " + text.replace("?>", "? >") + "?>"


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


_decls = st.dictionaries(st.sampled_from(["", *PREFIXES]), st.sampled_from(URIS), max_size=2)
_attrs = st.lists(
    st.one_of(
        st.tuples(st.sampled_from([None, None, None, "p", "q"]), st.sampled_from(ATTR_NAMES), TEXT),
        # xml:id's value must be an NCName (libxml2 enforces it, expat does not): the
        # corpus covers xml:id; random values go to xml:lang and xml:space.
        st.tuples(st.just("xml"), st.sampled_from(["lang", "space"]), TEXT),
    ),
    max_size=3,
)


_LEAF_KINDS = ("text", "cdata", "comment", "pi")
_KINDS = ("el", "el", "el", "el", "text", "text", "cdata", "comment", "pi")
_MAX_CHILDREN = (7, 5, 3, 3, 2, 2)  # by depth; deeper elements have no children


@st.composite
def elements(draw: st.DrawFn, depth: int = 0, need_child: bool = False) -> dict:
    """A random element; a small name alphabet makes (non-adjacent) repeats common."""
    element = {
        "prefix": draw(st.sampled_from([None, None, None, None, None, "p", "q"])),
        "name": draw(st.sampled_from(NAMES)),
        "decls": draw(_decls),
        "undeclare_default": draw(st.sampled_from([False, False, False, True])),
        "attrs": draw(_attrs),
        "children": [],
    }
    limit = _MAX_CHILDREN[depth] if depth < len(_MAX_CHILDREN) else 0
    for index in range(draw(st.integers(1 if need_child else 0, max(limit, need_child)))):
        kinds = _KINDS if depth + 1 < len(_MAX_CHILDREN) else _LEAF_KINDS
        kind = "el" if need_child and index == 0 else draw(st.sampled_from(kinds))
        if kind == "el":
            value: Any = draw(elements(depth + 1))
        elif kind in ("text", "cdata"):
            value = draw(TEXT)
        else:
            value = draw(SAFE_TEXT)
        element["children"].append((kind, value))
    return element


def _qname(prefix: str | None, name: str) -> str:
    return f"{prefix}:{name}" if prefix else name


def serialize(element: dict, scope: dict[str, str], out: list[str]) -> None:
    """Write `element` as namespace-well-formed XML; declare any prefix it uses."""
    decls: dict[str, str] = dict(element["decls"])
    if element["undeclare_default"] and "" not in decls:
        decls[""] = ""  # xmlns="" takes the default namespace away
    inner = {**scope, **decls}
    prefix = element["prefix"]
    if prefix and prefix not in inner:
        decls[prefix] = inner[prefix] = URIS[0]
    attrs: list[tuple[str, str]] = []
    seen: set[tuple[str | None, str]] = set()
    for attr_prefix, name, value in element["attrs"]:
        if attr_prefix and attr_prefix != "xml" and attr_prefix not in inner:
            decls[attr_prefix] = inner[attr_prefix] = URIS[1]
        uri = XML_NS if attr_prefix == "xml" else inner.get(attr_prefix) if attr_prefix else None
        if (uri, name) in seen:
            continue  # the same expanded attribute name twice is not well-formed
        seen.add((uri, name))
        attrs.append((_qname(attr_prefix, name), value))
    qname = _qname(prefix, element["name"])
    head = [qname]
    for decl_prefix, uri in decls.items():
        attr = f"xmlns:{decl_prefix}" if decl_prefix else "xmlns"
        head.append(f'{attr}="{_escape_attr(uri)}"')
    head.extend(f'{name}="{_escape_attr(value)}"' for name, value in attrs)
    if not element["children"]:
        out.append("<" + " ".join(head) + "/>")
        return
    out.append("<" + " ".join(head) + ">")
    for kind, value in element["children"]:
        if kind == "el":
            serialize(value, inner, out)
        elif kind == "text":
            out.append(_escape_text(value))
        elif kind == "cdata":
            out.append(_cdata(value))
        elif kind == "comment":
            out.append(_comment(value))
        else:
            out.append(_pi(value))
    out.append(f"</{qname}>")


@st.composite
def documents(draw: st.DrawFn, need_child: bool = False) -> tuple[bytes, dict]:
    root = draw(elements(need_child=need_child))
    out: list[str] = []
    before = draw(st.lists(st.sampled_from(["comment", "pi", "ws"]), max_size=2))
    after = draw(st.lists(st.sampled_from(["comment", "pi", "ws"]), max_size=2))
    misc = {"comment": "<!-- misc -->", "pi": "<?misc data?>", "ws": "\n  "}
    out.extend(misc[m] for m in before)
    serialize(root, {}, out)
    out.extend(misc[m] for m in after)
    body = "".join(out)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-decl", "utf-16"]))
    if encoding == "utf-8":
        return body.encode("utf-8"), root
    if encoding == "utf-8-decl":
        return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode("utf-8"), root
    return ('<?xml version="1.0" encoding="UTF-16"?>' + body).encode("utf-16"), root


def _record_path(doc: bytes, root: dict, draw: st.DrawFn) -> str:
    """root qname / the qname of one of the root's element children."""
    names = [
        _qname(child["prefix"], child["name"])
        for kind, child in root["children"]
        if kind == "el"
    ]
    return _qname(root["prefix"], root["name"]) + "/" + draw(st.sampled_from(names))


OPTION_SETS = st.sampled_from(
    ["default", "default", "expand", "keep_whitespace", "prefix_dash", "force_list_drawn"]
)
HYPOTHESIS_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _options(choice: str, draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    if choice == "force_list_drawn":
        names = draw(
            st.lists(st.sampled_from([*NAMES, "p:a", "q:b", "p:c"]), min_size=1, max_size=3)
        )
        return {"force_list": names}, {"force_list": tuple(names)}
    return VARIANTS[choice]


@HYPOTHESIS_SETTINGS
@given(data=st.data(), document=documents())
def test_random_documents_json_matches_xmltodict(data: st.DataObject, document) -> None:
    doc, _ = document
    options, kwargs = _options(data.draw(OPTION_SETS, label="options"), data.draw)
    expected = xmltodict.parse(doc, **kwargs)
    assert ours_json(doc, options) == expected


@settings(HYPOTHESIS_SETTINGS, max_examples=150)
@given(data=st.data(), document=documents())
def test_random_documents_yaml_equals_json(data: st.DataObject, document) -> None:
    doc, _ = document
    options, _ = _options(data.draw(OPTION_SETS, label="options"), data.draw)
    assert ours_yaml(doc, options) == ours_json(doc, options)


@settings(HYPOTHESIS_SETTINGS, max_examples=250)
@given(data=st.data(), document=documents(need_child=True))
def test_random_documents_jsonl_matches_xmltodict_records(
    data: st.DataObject, document
) -> None:
    doc, root = document
    path = _record_path(doc, root, data.draw)
    choice = data.draw(
        st.sampled_from(["default", "keep_whitespace", "prefix_dash", "force_list_drawn"]),
        label="options",
    )
    options, kwargs = _options(choice, data.draw)
    lines, result = ours_jsonl(doc, {**options, "record_path": path})
    assert lines == records_at(xmltodict.parse(doc, **kwargs), path)
    assert result.record_path == path


# ------------------------------------------------- well-formed, not namespace-well-formed

# Well-formed XML 1.0 that breaks the namespace rules. xmltodict's default mode (expat without
# namespace processing) converts them; so does the default `keep` (names as written). The modes
# that resolve names (strip, expand) refuse them, as expat's namespace mode does.
NOT_NAMESPACE_WELL_FORMED = [
    ("undeclared_attribute_prefix",
     b'<svg><a xlink:href="#x" xlink:title="t">t</a><a xlink:href="#y"/></svg>', "svg/a"),
    ("undeclared_element_prefix",
     b'<r>\n  <dc:title>T</dc:title><dc:title lang="en">U</dc:title>\n</r>', "r/dc:title"),
    ("xmlns_colon_without_a_name", b'<r xmlns:="urn:x" a="1"><a/></r>', None),
    ("empty_prefix_declaration", b'<r xmlns:p=""><p:a>1</p:a><p:a/></r>', "r/p:a"),
    ("two_colons", b'<r><a:b:c x:y:z="1">t</a:b:c></r>', None),
    ("leading_colon", b"<r><:a>1</:a><:a>2</:a></r>", "r/:a"),
    ("trailing_colon", b'<r><a: b:="2">1</a:></r>', None),
    ("one_expanded_attribute_twice",
     b'<r xmlns:a="urn:u" xmlns:b="urn:u"><e a:x="1" b:x="2"/><e/></r>', "r/e"),
    ("xmlns_prefix_declared", b'<r xmlns:xmlns="urn:x"><a/></r>', None),
    ("xml_prefix_bound_elsewhere", b'<r xmlns:xml="urn:other"><a xml:lang="en"/></r>', None),
    ("undeclared_prefix_on_records",
     b'<feed>\n<x:e id="1"><x:v>a</x:v></x:e>\n<x:e id="2" x:k="v"/>\n</feed>', "feed/x:e"),
    ("declared_after_use_elsewhere",
     b'<r><p:a>1</p:a><b xmlns:p="urn:p"><p:a>2</p:a></b></r>', None),
]
LENIENT_IDS = [c[0] for c in NOT_NAMESPACE_WELL_FORMED]
LENIENT_VARIANTS = [v for v in VARIANTS if v != "expand"]


def test_lenient_corpus_is_refused_by_expat_with_namespaces() -> None:
    """Each document really breaks the namespace rules: expat's namespace mode refuses it."""
    for name, doc, _ in NOT_NAMESPACE_WELL_FORMED:
        assert xmltodict.parse(doc) is not None, name
        with pytest.raises(ExpatError):
            xmltodict.parse(doc, process_namespaces=True)


@pytest.mark.parametrize("variant", LENIENT_VARIANTS)
@pytest.mark.parametrize(("name", "doc", "record_path"), NOT_NAMESPACE_WELL_FORMED,
                         ids=LENIENT_IDS)
def test_lenient_json_matches_xmltodict(name: str, doc: bytes, record_path: str | None,
                                        variant: str) -> None:
    options, kwargs = VARIANTS[variant]
    assert ours_json(doc, options) == xmltodict.parse(doc, **kwargs)
    assert ours_yaml(doc, options) == xmltodict.parse(doc, **kwargs)


@pytest.mark.parametrize(
    ("name", "doc", "record_path"),
    [c for c in NOT_NAMESPACE_WELL_FORMED if c[2] is not None],
    ids=[c[0] for c in NOT_NAMESPACE_WELL_FORMED if c[2] is not None],
)
def test_lenient_jsonl_matches_xmltodict_records(name: str, doc: bytes,
                                                 record_path: str) -> None:
    values, result = ours_jsonl(doc)  # the path is picked, as a new user would run it
    assert result.record_path == record_path
    assert values == records_at(xmltodict.parse(doc), record_path)


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "yaml", "text"])
@pytest.mark.parametrize("mode", ["strip", "expand"])
@pytest.mark.parametrize(("name", "doc", "record_path"), NOT_NAMESPACE_WELL_FORMED,
                         ids=LENIENT_IDS)
def test_lenient_documents_fail_where_namespaces_are_resolved(
    name: str, doc: bytes, record_path: str | None, mode: str, fmt: str
) -> None:
    with pytest.raises(converter.ConversionError) as caught:
        run(doc, fmt, {"namespaces": mode})
    error = caught.value
    assert error.code == "NAMESPACE_ERROR"
    assert error.message and error.line and error.column
    # the line of the start tag that breaks the rules
    first_line_of_fault = {"undeclared_element_prefix": 2, "undeclared_prefix_on_records": 2}
    assert error.line == first_line_of_fault.get(name, 1)


@pytest.mark.parametrize("fmt", ["csv", "text"])
def test_lenient_documents_convert_to_csv_and_text_by_default(fmt: str) -> None:
    for name, doc, _ in NOT_NAMESPACE_WELL_FORMED:
        data, _result = run(doc, fmt)
        if fmt == "csv":
            assert data.endswith(b"\r\n"), name
    doc = NOT_NAMESPACE_WELL_FORMED[0][1]
    if fmt == "text":
        data, _result = run(doc, "text", {"include_attributes": True})
        assert data == b"#x\nt\nt\n#y\n"
    else:
        data, _result = run(doc, "csv")
        assert data == b"@xlink:href,@xlink:title,#text\r\n#x,t,t\r\n#y,,\r\n"


def test_declarations_and_attributes_keep_document_order() -> None:
    """As expat reports them for xmltodict: an xmlns declaration after an attribute stays
    after it (key order, which == on dicts does not see)."""
    doc = (b'<xsl:stylesheet version="1.0" xmlns:xsl="urn:x" a="2" xmlns="urn:d">'
           b"<b/></xsl:stylesheet>")
    ours = ours_json(doc)["xsl:stylesheet"]
    theirs = xmltodict.parse(doc)["xsl:stylesheet"]
    assert list(ours) == list(theirs) == ["@version", "@xmlns:xsl", "@a", "@xmlns", "b"]
