"""XML constructs: mixed content, CDATA, comments and PIs anywhere, entities and
character references, encodings, whitespace, empty elements and attributes.

Values are checked literally and against xmltodict; every whole-document case is also
checked in yaml (equal to json) and, where it tells something, in text and jsonl.
"""

from __future__ import annotations

import codecs
import json

import pytest
import xmltodict
import yaml

FORMATS = ["json", "yaml", "jsonl", "csv", "text"]


def as_json(run, doc: bytes, options=None):
    value = json.loads(run(doc, "json", options))
    assert yaml.safe_load(run(doc, "yaml", options)) == value
    return value


# ----------------------------------------------------------------------- mixed content


def test_mixed_content_text_is_joined_around_children(run) -> None:
    doc = b"<p>Hello <b>big</b> world<i>!</i> end </p>"
    value = as_json(run, doc)
    assert value == xmltodict.parse(doc)
    assert value == {"p": {"b": "big", "i": "!", "#text": "Hello  world end"}}
    assert run(doc, "text") == b"Hello\nbig\nworld\n!\nend\n"


def test_mixed_content_with_attributes_and_repeats(run) -> None:
    doc = b'<p a="1">  lead <b/> mid <b>x</b> tail  </p>'
    value = as_json(run, doc)
    assert value == xmltodict.parse(doc)
    assert value == {"p": {"@a": "1", "b": [None, "x"], "#text": "lead  mid  tail"}}


# ------------------------------------------------------------------------------ CDATA


def test_cdata_is_text(run) -> None:
    doc = (
        b"<r><c><![CDATA[<not> & markup]]></c><d>a<![CDATA[b]]>c</d><e><![CDATA[]]></e>"
        b"<f><![CDATA[  ]]></f><g> <![CDATA[x]]> </g><h><![CDATA[]]]]><![CDATA[>]]></h></r>"
    )
    value = as_json(run, doc)
    assert value == xmltodict.parse(doc)
    assert value["r"] == {
        "c": "<not> & markup",
        "d": "abc",
        "e": None,
        "f": None,
        "g": "x",
        "h": "]]>",
    }
    assert run(doc, "text") == b"<not> & markup\nabc\nx\n]]>\n"


def test_cdata_in_records_and_csv(run) -> None:
    doc = b"<r><n><![CDATA[a, \"b\"\nc]]></n><n><![CDATA[<x>]]></n></r>"
    lines = run(doc, "jsonl").splitlines()
    assert [json.loads(line) for line in lines] == ['a, "b"\nc', "<x>"]
    assert run(doc, "csv") == b'#text\r\n"a, ""b""\nc"\r\n<x>\r\n'


# --------------------------------------------------------- comments and PIs, anywhere

COMMENTS_AND_PIS = (
    b'<?xml version="1.0"?>\n'
    b"<!-- before root --><?pi before?>\n"
    b'<r a="1"><!-- first child position --><?pi first?>'
    b"<x>te<!-- inside text -->xt<?pi inside?>!</x>"
    b"<!-- between --><?pi between?>"
    b"<y><!-- only a comment --></y>"
    b"<z><?only a-pi?></z>"
    b"<x>2</x><!-- last --><?pi last?>"
    b"</r>\n<!-- after root --><?pi after?>\n"
)


def test_comments_and_processing_instructions_are_dropped_everywhere(run) -> None:
    value = as_json(run, COMMENTS_AND_PIS)
    assert value == xmltodict.parse(COMMENTS_AND_PIS)
    assert value == {"r": {"@a": "1", "x": ["text!", "2"], "y": None, "z": None}}


@pytest.mark.parametrize("fmt", FORMATS)
def test_comment_and_pi_content_never_reaches_the_output(run, fmt: str) -> None:
    out = run(COMMENTS_AND_PIS, fmt, {"include_attributes": True} if fmt == "text" else None)
    for word in (b"root", b"position", b"inside", b"between", b"only", b"last", b"pi"):
        assert word not in out


def test_comments_and_pis_between_records(run) -> None:
    doc = b"<r><!--c--><i>1</i><?p?><!--c--><i>2<!--c--></i><?p x?></r>"
    assert [json.loads(line) for line in run(doc, "jsonl").splitlines()] == ["1", "2"]
    assert run(doc, "text") == b"1\n2\n"


# ------------------------------------------------------ entities and character references


def test_predefined_entities_and_character_references(run) -> None:
    doc = (
        b'<r a="&lt;&amp;&gt;&quot;&apos;" b="&#65;&#x42;">&lt;tag&gt; &amp; &quot;q&quot; '
        b"&apos;s&apos;<c>&#65;&#x42;&#x4E2D;&#x1F600;&#xe9;</c><d>a]]&gt;b</d></r>"
    )
    value = as_json(run, doc)
    assert value == xmltodict.parse(doc)
    assert value["r"] == {
        "@a": "<&>\"'",
        "@b": "AB",
        "c": "AB中😀é",
        "d": "a]]>b",
        "#text": "<tag> & \"q\" 's'",
    }
    assert run(doc, "text") == "<tag> & \"q\" 's'\nAB中😀é\na]]>b\n".encode()


def test_character_references_for_whitespace_in_attributes_survive_normalisation(run) -> None:
    doc = b'<r a="x\ny\tz" b="&#10;kept&#9;" c="&#13;"/>'
    value = as_json(run, doc, {"strip_whitespace": False})
    assert value == xmltodict.parse(doc, strip_whitespace=False)
    assert value == {"r": {"@a": "x y z", "@b": "\nkept\t", "@c": "\r"}}


# -------------------------------------------------------------------------- encodings

UNICODE_TEXT = "é ü ß 中 😀"
ENCODED = [
    ("utf8", f"<r a='ä'><t>{UNICODE_TEXT}</t></r>".encode()),
    (
        "utf8-declared",
        f'<?xml version="1.0" encoding="UTF-8"?><r a="ä"><t>{UNICODE_TEXT}</t></r>'.encode(),
    ),
    ("utf8-bom", codecs.BOM_UTF8 + f"<r a='ä'><t>{UNICODE_TEXT}</t></r>".encode()),
    (
        "utf16le-bom",
        codecs.BOM_UTF16_LE
        + f'<?xml version="1.0" encoding="UTF-16"?><r a="ä"><t>{UNICODE_TEXT}</t></r>'.encode(
            "utf-16-le"
        ),
    ),
    (
        "utf16be-bom",
        codecs.BOM_UTF16_BE
        + f'<?xml version="1.0" encoding="UTF-16"?><r a="ä"><t>{UNICODE_TEXT}</t></r>'.encode(
            "utf-16-be"
        ),
    ),
    (
        "utf16le-bom-undeclared",
        codecs.BOM_UTF16_LE + f"<r a='ä'><t>{UNICODE_TEXT}</t></r>".encode("utf-16-le"),
    ),
]


@pytest.mark.parametrize(("name", "doc"), ENCODED, ids=[n for n, _ in ENCODED])
def test_input_encodings_give_utf8_output(run, name: str, doc: bytes) -> None:
    expected = {"r": {"@a": "ä", "t": UNICODE_TEXT}}
    assert json.loads(run(doc)) == expected
    assert yaml.safe_load(run(doc, "yaml").decode("utf-8")) == expected
    assert run(doc, "text").decode("utf-8") == UNICODE_TEXT + "\n"
    assert run(doc, "csv").decode("utf-8") == f"@a,t\r\nä,{UNICODE_TEXT}\r\n"
    assert json.loads(run(doc, "jsonl")) == expected["r"]
    assert not run(doc).startswith(codecs.BOM_UTF8)


def test_iso_8859_1_with_declaration(run) -> None:
    text = '<?xml version="1.0" encoding="ISO-8859-1"?>\n<r a="café">naïve ß ÿ ©<b>é</b></r>'
    doc = text.encode("latin-1")
    value = as_json(run, doc)
    assert value == {"r": {"@a": "café", "b": "é", "#text": "naïve ß ÿ ©"}}
    assert value == xmltodict.parse(doc)
    assert run(doc, "text").decode("utf-8") == "naïve ß ÿ ©\né\n"


def test_windows_1252_declaration(run) -> None:
    doc = '<?xml version="1.0" encoding="windows-1252"?><r>€ “q”</r>'.encode("cp1252")
    assert json.loads(run(doc)) == {"r": "€ “q”"}


# ------------------------------------------------------------------------- whitespace


def test_whitespace_only_text_disappears_and_text_is_stripped(run) -> None:
    doc = b"<r>\n  <a>  x  y  </a>\n  <b>\t\n</b>\n  <c> <d/> </c>\n</r>"
    value = as_json(run, doc)
    assert value == xmltodict.parse(doc)
    assert value == {"r": {"a": "x  y", "b": None, "c": {"d": None}}}


def test_line_endings_are_normalised(run) -> None:
    doc = b"<r>\r\n<a>x\r\ny\rz</a>\r\n</r>"
    value = as_json(run, doc)
    assert value == xmltodict.parse(doc)
    assert value == {"r": {"a": "x\ny\nz"}}


def test_unicode_whitespace_is_stripped_like_xmltodict(run) -> None:
    doc = "<r><a>\u00a0x\u00a0</a><b>\u3000</b><c>\u2003y\u2028</c></r>".encode()
    assert as_json(run, doc) == xmltodict.parse(doc)
    assert as_json(run, doc, {"strip_whitespace": False}) == xmltodict.parse(
        doc, strip_whitespace=False
    )


# ----------------------------------------------------------- empty elements, attributes


@pytest.mark.parametrize("doc", [b"<a/>", b"<a></a>", b"<a>  </a>", b"<a><!--c--></a>"])
def test_empty_root_is_null(run, doc: bytes) -> None:
    assert run(doc) == b'{"a":null}\n'
    assert yaml.safe_load(run(doc, "yaml")) == {"a": None}
    assert run(doc, "text") == b""
    assert run(doc, "jsonl") == b"null\n"


def test_empty_children_are_null(run) -> None:
    doc = b"<r><a/><b></b><c>  </c><a></a></r>"
    value = as_json(run, doc)
    assert value == {"r": {"a": [None, None], "b": None, "c": None}}
    assert value == xmltodict.parse(doc)


def test_whitespace_element_kept_when_not_stripping(run) -> None:
    doc = b"<r><c>  </c><d/></r>"
    assert as_json(run, doc, {"strip_whitespace": False}) == {"r": {"c": "  ", "d": None}}


def test_attributes_with_and_without_text(run) -> None:
    doc = (
        b'<r><e x="1" y=""/><e x="2"></e><p c="EUR">12.50</p><w k="v">  </w>'
        b"<s a='1' b = \"2\"  c='&apos;\"'/></r>"
    )
    value = as_json(run, doc)
    assert value == xmltodict.parse(doc)
    assert value["r"] == {
        "e": [{"@x": "1", "@y": ""}, {"@x": "2"}],
        "p": {"@c": "EUR", "#text": "12.50"},
        "w": {"@k": "v"},
        "s": {"@a": "1", "@b": "2", "@c": "'\""},
    }


def test_root_with_attributes_only(run) -> None:
    doc = b'<r xmlns="urn:x" a="1"/>'
    assert as_json(run, doc) == {"r": {"@xmlns": "urn:x", "@a": "1"}}
    assert run(doc, "text", {"include_attributes": True}) == b"1\n"


def test_attribute_order_is_document_order(run) -> None:
    doc = b'<r z="1" a="2" m="3"><c/></r>'
    assert run(doc) == b'{"r":{"@z":"1","@a":"2","@m":"3","c":null}}\n'


def test_non_adjacent_repeats_group_at_first_position(run) -> None:
    doc = b"<r><b>1</b><c>x</c><b>2</b><d/><b>3</b><c>y</c></r>"
    assert run(doc) == b'{"r":{"b":["1","2","3"],"c":["x","y"],"d":null}}\n'
    assert json.loads(run(doc)) == xmltodict.parse(doc)
