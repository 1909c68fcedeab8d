"""The converter is linear and bounded on any input (issue 18): every shape of the hostile
corpus (testkit/hostile.py), at a small size, in every format, finishes or fails with its
limit's code within seconds; each limit refuses what passes it, with its position, and
nothing below it. The full-size corpus, with peak RSS, runs in a subprocess in
tests/integration/test_hostile_converter.py.
"""

from __future__ import annotations

import io
import json
import time

import pytest

from converter import ConversionError, Limits, _accel, convert
from converter.options import parse_options
from converter.parsing import PIECE, make_engine
from testkit import hostile

FORMATS = ("json", "yaml", "jsonl", "csv", "text")

# Each shape, small, and what the default limits make of it (None: converted).
SMALL = {
    "attlist_defaults": (hostile.attlist_defaults(20, 100, 50), "ATTRIBUTE_DEFAULTS_LIMIT"),
    "new_attribute_per_record": (hostile.new_attribute_per_record(11_000), "TOO_MANY_NAMES"),
    "deep_nesting": (hostile.deep_nesting(2, 300), None),
    "deep_siblings": (hostile.deep_siblings(5, 300), None),
    "many_attributes": (hostile.many_attributes(300_000), "TOO_MANY_ATTRIBUTES"),
    "wide": (hostile.wide(20_000), None),
    "repetitive": (hostile.repetitive(20_000), None),
    "many_element_names": (hostile.many_element_names(600, 20), "TOO_MANY_NAMES"),
    "distinct_names": (hostile.distinct_names(12_000), "TOO_MANY_NAMES"),
    "long_names": (hostile.long_names(10_000, 3), None),
    "long_attribute_value": (hostile.long_attribute_value(1 << 20), None),
    "long_text": (hostile.long_text(1 << 20), None),
    "many_namespaces": (hostile.many_namespaces(5_000), "TOO_MANY_ATTRIBUTES"),
    "nested_namespaces": (hostile.nested_namespaces(100), None),
    "one_big_record": (hostile.one_big_record(11_000), "TOO_MANY_NAMES"),
}


def _convert(doc: bytes, fmt: str, limits: Limits | None = None, chunk_size: int = 1 << 19,
             **options) -> bytes:
    out = io.BytesIO()
    convert(io.BytesIO(doc), out, fmt, options, limits=limits, chunk_size=chunk_size)
    return out.getvalue()


def _code(doc: bytes, fmt: str, limits: Limits | None = None, chunk_size: int = 1 << 19,
          **options) -> ConversionError:
    with pytest.raises(ConversionError) as caught:
        _convert(doc, fmt, limits, chunk_size, **options)
    return caught.value


def test_the_corpus_names_every_shape_of_the_issue_and_more():
    assert set(SMALL) == set(hostile.SHAPES)
    assert all(data.startswith(b"<") for _name, data in
               ((name, make()) for name, make in list(hostile.SHAPES.items())[:3]))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(SMALL))
def test_each_hostile_shape_converts_or_fails_with_its_code_quickly(name, fmt):
    doc, code = SMALL[name]
    started = time.monotonic()
    if code is None:
        assert _convert(doc, fmt) is not None
    else:
        error = _code(doc, fmt)
        assert error.code == code
        assert error.line is not None
    assert time.monotonic() - started < 3


def test_an_element_with_many_attributes_is_refused_before_the_quadratic_check():
    # 300,000 attributes took libxml2's SAX1 duplicate check over a minute on main.
    doc = hostile.many_attributes(300_000)
    started = time.monotonic()
    error = _code(doc, "json")
    assert time.monotonic() - started < 1
    assert error.code == "TOO_MANY_ATTRIBUTES"
    assert (error.line, error.column) == (1, 1)


def test_the_attribute_limit_counts_exactly_and_names_the_place():
    doc = b"<r>\n  <e " + b" ".join(b'a%d="="' % i for i in range(10)) + b"/></r>"
    assert json.loads(_convert(doc, "json", Limits(max_attributes=10)))["r"]["e"]["@a9"] == "="
    error = _code(doc, "json", Limits(max_attributes=9))
    assert (error.code, error.line) == ("TOO_MANY_ATTRIBUTES", 2)


def test_a_long_start_tag_with_few_attributes_is_not_refused():
    value = "v" * 100_000
    doc = f'<r a="{value}" b="{value}"/>'.encode()
    assert json.loads(_convert(doc, "json", Limits(max_attributes=2)))["r"]["@b"] == value


def test_declared_defaults_are_bounded_by_count_and_bytes():
    attlist = "".join(f'<!ATTLIST e d{i} CDATA "{"x" * 10}">' for i in range(5))
    doc = f"<!DOCTYPE r [{attlist}]><r><e/></r>".encode()
    assert len(json.loads(_convert(doc, "json", Limits(max_attribute_defaults=5)))["r"]["e"]) == 5
    assert _code(doc, "json", Limits(max_attribute_defaults=4)).code == "ATTRIBUTE_DEFAULTS_LIMIT"
    assert _code(doc, "json", Limits(max_attribute_default_bytes=49)).code == \
        "ATTRIBUTE_DEFAULTS_LIMIT"


def test_csv_columns_are_bounded_even_when_numbered_items_multiply_them():
    # n items, each with a child name of its own: n numbered items × n names = n² columns.
    items = "".join(f"<i><c{n}>v</c{n}></i>" for n in range(40))
    doc = f"<r><row>{items}</row><row>{items}</row></r>".encode()
    limits = Limits(max_columns=1000)
    assert _code(doc, "csv", limits, record_path="r/row").code == "TOO_MANY_COLUMNS"
    header = _convert(doc, "csv", Limits(max_columns=1600), record_path="r/row").split(b"\r\n")[0]
    assert header.count(b",") + 1 == 1600


def test_a_new_column_per_record_stops_at_the_column_limit():
    doc = hostile.new_attribute_per_record(3_000)
    assert _code(doc, "csv", Limits(max_columns=2_000)).code == "TOO_MANY_COLUMNS"
    assert _convert(doc, "jsonl", Limits(max_columns=2_000)).count(b"\n") == 3_000


@pytest.mark.parametrize("doc", [hostile.long_text(5000), hostile.long_attribute_value(5000)],
                         ids=["text", "attribute"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_values_larger_than_the_limit_are_refused(doc, fmt):
    # Every format reads every value (text checks attributes too, as it checks namespaces).
    assert _code(doc, fmt, Limits(max_value_bytes=4096)).code == "VALUE_TOO_LARGE"
    assert _convert(doc, fmt, Limits(max_value_bytes=8192)) is not None


def test_a_start_tag_still_arriving_is_refused_once_it_is_larger_than_a_value_may_be():
    doc = b'<r a="' + b"v" * 200_000 + b'"/>'
    error = _code(doc, "json", Limits(max_value_bytes=65536))
    assert error.code == "VALUE_TOO_LARGE"


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_output_limit_is_exact(fmt):
    doc = b"<r>" + b'<e k="v">t</e>' * 2000 + b"</r>"
    full = _convert(doc, fmt)
    assert _convert(doc, fmt, Limits(max_output_bytes=len(full))) == full
    error = _code(doc, fmt, Limits(max_output_bytes=len(full) - 1))
    assert error.code == "OUTPUT_TOO_LARGE"


def test_the_output_limit_counts_the_indented_bytes_exactly():
    doc = b"<r>" + b'<e k="v"><f>t</f></e>' * 2000 + b"</r>"
    full = _convert(doc, "json", indent=4)
    assert len(full) > 2 * len(_convert(doc, "json"))
    assert _convert(doc, "json", Limits(max_output_bytes=len(full)), indent=4) == full
    error = _code(doc, "json", Limits(max_output_bytes=len(full) - 1), indent=4)
    assert error.code == "OUTPUT_TOO_LARGE"


def test_deep_indented_json_stops_at_the_output_limit_early():
    doc = hostile.deep_siblings(200)  # 1.5 GB of JSON with --indent 8
    started = time.monotonic()
    error = _code(doc, "json", Limits(max_output_bytes=20 * len(doc)), indent=8)
    assert error.code == "OUTPUT_TOO_LARGE"
    assert time.monotonic() - started < 3


def test_open_elements_with_many_distinct_child_names_are_bounded():
    # Every level of a chain has 30 child names, streamed (small chunks make each open
    # element a frame): a group per name per level, 1,500 alive at the deepest.
    level = "".join(f"<k{i}/>" for i in range(30))
    doc = ("<r>" + f"<a>{level}" * 50 + "</a>" * 50 + "</r>").encode()
    assert _code(doc, "json", Limits(max_names=1000), chunk_size=64).code == "TOO_MANY_NAMES"
    assert _convert(doc, "json", Limits(max_names=2000), chunk_size=64) == \
        _convert(doc, "json", Limits(max_names=2000))


@pytest.mark.parametrize("bad", [{"max_attributes": 0}, {"max_columns": -1},
                                 {"max_output_bytes": 0}, {"max_names": True}])
def test_limits_refuse_values_that_are_not_positive_integers(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        Limits(**bad)


@pytest.mark.parametrize("step", [1, 3, 7, 4096])
def test_reindenting_copies_long_and_escaped_strings_through_in_any_chunking(step):
    value = {"a": ["x" * 70_000 + '\\"\n\u00e9', {"b": None, "c": [1, True, "q\\"]}], "d": {}}
    compact = json.dumps(value, separators=(",", ":")).encode()
    out = io.BytesIO()
    with _accel.Reindenter(out, 2) as pretty:
        for start in range(0, len(compact), step if len(compact) < 200_000 else 4096):
            pretty.write(compact[start:start + step])
    assert out.getvalue() == json.dumps(value, indent=2).encode() + b"\n"


def _bytes_copied(doc: bytes, fmt: str) -> tuple[int, int]:
    """The bytes the engine moved from its spools into their parents' (or the output), and
    the output's size."""
    engine = make_engine(fmt, parse_options(None), Limits())
    out = io.BytesIO()
    engine.set_output(out.write)
    for start in range(0, len(doc), PIECE):
        engine.feed(doc[start:start + PIECE])
    engine.feed(b"", True)
    return engine.bytes_copied, len(out.getvalue())


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_a_nested_subtree_is_not_copied_again_at_every_level_above_it(fmt):
    """Twice as deep a chain adds about the output it adds to the bytes moved, not depth
    times it: each level's subtree was once copied into its parent's spool, O(depth x output)
    bytes (O(depth^3) in YAML, whose lines carry the depth: 15 s for deep_siblings). A
    counter, not a clock: the chunks a spool hands over are not bytes moved."""
    copied, output = _bytes_copied(hostile.deep_siblings(4, 400), fmt)
    copied_deeper, output_deeper = _bytes_copied(hostile.deep_siblings(4, 800), fmt)
    assert output_deeper > output
    assert copied_deeper - copied <= 2 * (output_deeper - output), (copied, copied_deeper)
    assert copied_deeper <= 2 * output_deeper + 4 * 512 * 1024  # a bounded copy per chain
