"""The converter's limits: what one document may make it do, beyond its options.

Every limit bounds a cost that would otherwise grow faster than the input (time) or without a
bound of its own (memory, output); passing one fails the conversion with its code, at the
place in the document where it was passed. `Limits()` is what `xmlconv convert` and the
service use unless told otherwise; docs/limits.md ("The converter") says why each default is
what it is. Pure Python, no lxml: the service's settings build one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Per-document limits (see docs/limits.md); `max_output_bytes=None`: unbounded."""

    # Attributes (and xmlns declarations) of one element: libxml2's SAX1 check for duplicate
    # attributes compares each with every earlier one, so its cost grows with their square.
    max_attributes: int = 256
    # Attribute defaults declared in the DTD (<!ATTLIST e a CDATA "value">), copied into
    # every element they apply to: how many, and their values' total bytes.
    max_attribute_defaults: int = 256
    max_attribute_default_bytes: int = 1024
    # Distinct element and attribute names in one document (each is kept by the parser for
    # the whole document), and distinct child names under the open elements (json, yaml).
    max_names: int = 10_000
    # Distinct CSV columns.
    max_columns: int = 2_000
    # One element's text, or one start tag with its attributes, held whole.
    max_value_bytes: int = 16 * MiB
    # Bytes written to the output; None: unbounded.
    max_output_bytes: int | None = None

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None and field.name == "max_output_bytes":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Limits.{field.name} must be a positive integer, "
                                 f"not {value!r}")


def output_allowance(input_bytes: int, amplification: int, allowance: int) -> int:
    """The most output a job may write: `amplification` × its input, plus `allowance`."""
    return amplification * max(input_bytes, 0) + allowance
