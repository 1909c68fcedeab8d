"""A hostile corpus: small XML documents shaped to make a converter slow, big or hungry.

Each shape is a function returning the document's bytes (at most a few MB, made in well under a
second), named as the tests and the issue name it:

    from testkit.hostile import SHAPES
    for name, make in SHAPES.items():
        data = make()

The first five are issue 18's table (converter/, `xmlconv convert` on main): ATTLIST defaults
amplified into every element, a new attribute name per record (CSV columns), deep nesting
(indented JSON), siblings each nested deep (CSV paths), and one element with very many
attributes (libxml2's duplicate-attribute check). The rest are what else a hostile client
would try: wide, deep, repetitive, many names, long names, long values, many namespaces.
Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

DEEP = 990  # below the default max_depth (1000): the depth limit alone does not refuse these


def attlist_defaults(declared: int = 100, size: int = 1000, elements: int = 1000) -> bytes:
    """Declared attribute defaults, each `size` characters, copied into every `<e/>`."""
    attlist = "".join(f'<!ATTLIST e d{i} CDATA "{"x" * size}">' for i in range(declared))
    return f"<!DOCTYPE r [{attlist}]><r>{'<e/>' * elements}</r>".encode()


def new_attribute_per_record(records: int = 10_000) -> bytes:
    """Every record has an attribute no other record has: one more CSV column per record."""
    rows = "".join(f'<row a{i}="{i}"/>' for i in range(records))
    return f"<r>{rows}</r>".encode()


def deep_nesting(trees: int = 20, depth: int = DEEP) -> bytes:
    """`trees` chains of `depth` nested elements: indented JSON repeats depth × indent spaces
    on every line."""
    chain = "<a>" * (depth - 1) + "x" + "</a>" * (depth - 1)
    return f"<r>{chain * trees}</r>".encode()


def deep_siblings(siblings: int = 200, depth: int = DEEP) -> bytes:
    """Siblings (the records), each a chain `depth` deep: a CSV path per level per record."""
    chain = "<s>" + "<a>" * (depth - 2) + "x" + "</a>" * (depth - 2) + "</s>"
    return f"<r>{chain * siblings}</r>".encode()


def many_attributes(count: int = 100_000) -> bytes:
    """One element with `count` distinct attributes (SAX1's duplicate check is quadratic)."""
    attributes = " ".join(f'a{i}=""' for i in range(count))
    return f"<r {attributes}/>".encode()


def wide(children: int = 200_000) -> bytes:
    """One element with very many children, all with the same name."""
    return b"<r>" + b"<c>1</c>" * children + b"</r>"


def repetitive(records: int = 300_000) -> bytes:
    """Tiny repeated records with an attribute each: many values, one shape."""
    return b"<r>" + b'<e k="v"/>' * records + b"</r>"


def many_element_names(records: int = 2_000, names_per_record: int = 20) -> bytes:
    """Records whose children all have names no other record has: CSV columns, name caches."""
    parts = []
    for record in range(records):
        children = "".join(f"<n{record}_{i}>v</n{record}_{i}>" for i in range(names_per_record))
        parts.append(f"<row>{children}</row>")
    return f"<r>{''.join(parts)}</r>".encode()


def distinct_names(count: int = 200_000) -> bytes:
    """Every element a name never seen before: libxml2 keeps each name in its dictionary."""
    return ("<r>" + "".join(f"<n{i}/>" for i in range(count)) + "</r>").encode()


def long_names(length: int = 100_000, count: int = 10) -> bytes:
    """Element and attribute names `length` characters long."""
    name = "n" * length
    attribute = "a" * length
    return ("<r>" + f'<{name} {attribute}="v"/>' * count + "</r>").encode()


def long_attribute_value(size: int = 4 * 1024 * 1024) -> bytes:
    """One attribute value of `size` bytes."""
    return b'<r a="' + b"v" * size + b'"/>'


def long_text(size: int = 4 * 1024 * 1024) -> bytes:
    """One text node of `size` bytes."""
    return b"<r>" + b"t" * size + b"</r>"


def many_namespaces(count: int = 20_000) -> bytes:
    """One element declaring `count` namespace prefixes, then children using the last."""
    declarations = " ".join(f'xmlns:p{i}="urn:{i}"' for i in range(count))
    return f'<r {declarations}><p{count - 1}:c/></r>'.encode()


def nested_namespaces(depth: int = 500) -> bytes:
    """Every level declares a new prefix: the scope stack grows with the depth."""
    opens = "".join(f'<p{i}:e xmlns:p{i}="urn:{i}">' for i in range(depth))
    closes = "".join(f"</p{i}:e>" for i in reversed(range(depth)))
    return f"<r>{opens}{closes}</r>".encode()


def one_big_record(children: int = 100_000) -> bytes:
    """A document with no repeats under its root's parent: jsonl and csv make the whole root
    one record, so it is built whole."""
    return ("<r>" + "".join(f"<c{i}>v</c{i}>" for i in range(children)) + "</r>").encode()


SHAPES: dict[str, Callable[[], bytes]] = {
    "attlist_defaults": attlist_defaults,
    "new_attribute_per_record": new_attribute_per_record,
    "deep_nesting": deep_nesting,
    "deep_siblings": deep_siblings,
    "many_attributes": many_attributes,
    "wide": wide,
    "repetitive": repetitive,
    "many_element_names": many_element_names,
    "distinct_names": distinct_names,
    "long_names": long_names,
    "long_attribute_value": long_attribute_value,
    "long_text": long_text,
    "many_namespaces": many_namespaces,
    "nested_namespaces": nested_namespaces,
    "one_big_record": one_big_record,
}


def corpus() -> Iterator[tuple[str, bytes]]:
    """(name, document) for every shape."""
    for name, make in SHAPES.items():
        yield name, make()
