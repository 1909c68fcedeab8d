"""Indented JSON (the `indent` option): the C Reindenter (converter/_reindent.pxi) against
json.dumps(value, indent=n), an independent layout of the same value, on compact JSON streams
cut at arbitrary points: escapes and \\uXXXX split across writes, empty containers, deep
nesting, long scalars, indent 1 to 8. Then what the stream does to its destination: writes
bounded however deep the nesting or long the string, and none at all until something is made.
"""

from __future__ import annotations

import io
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from converter import _accel

FLUSH = 1 << 20  # _reindent.pxi's REINDENT_FLUSH
ROOM = FLUSH + 65536  # what is waiting when a flush is due: at most one buffer of it

# Strings rich in what JSON escapes (quotes, backslashes, control characters) and in what
# ensure_ascii turns into \uXXXX (accents, CJK, astral characters as surrogate pairs).
_TEXT = st.text(
    alphabet=st.one_of(st.sampled_from('"\\/\n\r\t\b\f\x00\x1f\x7f é中😀\u2028 ab'),
                       st.characters(exclude_categories=("Cs",))),
    max_size=12)
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False), _TEXT,
    st.integers(1, 3000).map(lambda n: "x" * n + '"\\'))  # long: cut inside, many times
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_TEXT, inner, max_size=5),
    max_leaves=40)


def _nested(value: Any, depth: int, as_maps: bool) -> Any:
    for level in range(depth):
        value = {f"k{level}": value, "e": {}} if as_maps else [value, []]
    return value


_DOCUMENTS = st.one_of(
    _VALUES,
    st.builds(_nested, _VALUES, st.integers(50, 300), st.booleans()))


def _reindented(compact: bytes, indent: int, cuts: list[int]) -> bytes:
    out = io.BytesIO()
    with _accel.Reindenter(out, indent) as pretty:
        start = 0
        for cut in sorted(cuts) + [len(compact)]:
            assert pretty.write(compact[start:cut]) == cut - start
            start = cut
    return out.getvalue()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_DOCUMENTS, indent=st.integers(1, 8), ensure_ascii=st.booleans(), data=st.data())
def test_reindenting_compact_json_cut_anywhere_lays_it_out_as_json_dumps(
        value, indent, ensure_ascii, data):
    compact = json.dumps(value, separators=(",", ":"), ensure_ascii=ensure_ascii).encode()
    cuts = data.draw(st.lists(st.integers(0, len(compact)), max_size=40), label="cuts")
    expected = json.dumps(value, indent=indent, ensure_ascii=ensure_ascii).encode() + b"\n"
    assert _reindented(compact, indent, cuts) == expected


def test_every_cut_of_escapes_and_unicode_escapes_is_the_same_output():
    value = {"a\\\"": ['\\u0041"\\', "\x01\u00e9\U0001f600", [], {}], "": [{"": None}]}
    for ensure_ascii in (False, True):
        compact = json.dumps(value, separators=(",", ":"), ensure_ascii=ensure_ascii).encode()
        expected = json.dumps(value, indent=4, ensure_ascii=ensure_ascii).encode() + b"\n"
        for first in range(len(compact) + 1):
            for second in range(first, min(first + 8, len(compact)) + 1):
                assert _reindented(compact, 4, [first, second]) == expected


class _Writes:
    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.total = io.BytesIO()

    def write(self, data: bytes) -> int:
        self.sizes.append(len(data))
        return self.total.write(data)


def test_deep_nesting_makes_many_bounded_writes_from_one_small_one():
    # 1,000 items 2,000 lists down at indent 8: 16 KB of indent a line, 16 MB in all from
    # one write of 8 KB (laid out here by hand: json.dumps recurses too deep for it).
    depth, items = 2000, 1000
    compact = b"[" * depth + b",".join(b"%d" % i for i in range(items)) + b"]" * depth
    inner = b" " * 8 * depth
    expected = (b"".join(b" " * 8 * level + b"[\n" for level in range(depth))
                + b",\n".join(inner + b"%d" % i for i in range(items))
                + b"".join(b"\n" + b" " * 8 * level + b"]" for level in reversed(range(depth)))
                + b"\n")
    dest = _Writes()
    with _accel.Reindenter(dest, 8) as pretty:
        pretty.write(compact)
    assert len(compact) < 8000 and len(expected) > 16_000_000
    assert dest.total.getvalue() == expected
    assert len(dest.sizes) > 10 and max(dest.sizes) <= ROOM


def test_a_long_string_is_passed_on_in_bounded_pieces():
    value = ["y" * (5 * FLUSH) + "\\" + "z" * FLUSH]
    compact = json.dumps(value, separators=(",", ":")).encode()
    dest = _Writes()
    with _accel.Reindenter(dest, 2) as pretty:
        pretty.write(compact)
        assert len(dest.sizes) >= 6 and max(dest.sizes) <= ROOM
    assert dest.total.getvalue() == json.dumps(value, indent=2).encode() + b"\n"


def test_nothing_is_written_for_an_empty_write_and_a_stream_left_by_an_error_is_not_closed():
    dest = _Writes()
    pretty = _accel.Reindenter(dest, 2)
    assert pretty.write(b"") == 0
    assert dest.sizes == []
    try:
        with pretty:
            pretty.write(b'{"a":')
            raise RuntimeError("the conversion failed")
    except RuntimeError:
        pass
    assert dest.total.getvalue() == b'{\n  "a": '  # no closing newline after a failure


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), indent=st.integers(1, 8))
def test_bytes_that_are_not_json_are_passed_on_without_failing(data, indent):
    # Stray closing brackets take the depth below zero: lines are then not indented at all.
    out = _reindented(data, indent, [len(data) // 2])
    kept = sum(1 for byte in data if byte not in b" \t\r\n")
    assert out.endswith(b"\n") and len(out) >= kept
