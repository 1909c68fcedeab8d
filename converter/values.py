"""An element's value exactly as xmltodict.parse builds it.

The per-element work is the hot path of every format, so it runs in C
(converter/_accel.pyx reads libxml2's nodes directly: exact prefixes and namespace
declarations, no Python object per element). This module configures it and holds
the small pieces the streaming writers add around it.

xmltodict's rules:
- attributes first (prefixed keys), then children in document order, then the text;
- a repeated child key turns into a list at its first position, even when the
  repeats are not adjacent;
- text is all character data directly inside the element (its text and its
  children's tails) joined, then stripped; whitespace-only text disappears;
- an element with neither attributes nor children is its text, or None.
"""

from __future__ import annotations

import math
import re
from typing import Any

from lxml import etree

from ._accel import Builder
from .errors import DEPTH_LIMIT_EXCEEDED, ConversionError
from .options import Options

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\Z")
_INT64 = (-(2**63), 2**63 - 1)


def infer(text: str) -> Any:
    """types=infer: integers, decimals and true/false become numbers and booleans.

    Strings a number type would change stay strings: leading zeros (`007`), a plus
    sign, integers beyond 64 bits, decimals beyond float range.
    """
    if text == "true":
        return True
    if text == "false":
        return False
    match = _NUMBER.match(text)
    if match is None:
        return text
    if match.group(1) is None and match.group(2) is None:
        number = int(text)
        return number if _INT64[0] <= number <= _INT64[1] else text
    number = float(text)
    return number if math.isfinite(number) else text


def is_element(node: etree._Element) -> bool:
    """False for the entity references libxml2 keeps when a DTD might declare them
    (xmltodict drops those)."""
    return type(node.tag) is str


def has_element_child(node: etree._Element) -> bool:
    return next(node.iterchildren(etree.Element), None) is not None


class Values:
    """Values of complete elements, and the pieces streaming frames need."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.text_key = options.text_key
        self.force = frozenset(options.force_list)
        self.max_depth = options.max_depth
        self._infer = infer if options.types == "infer" else None
        self._strip = options.strip_whitespace
        builder = Builder(options.namespaces, options.attr_prefix, options.text_key,
                          self.force, options.strip_whitespace, self._infer,
                          options.max_depth, self._depth_error)
        self.value = builder.value  # (element, depth) -> value
        self.key = builder.key  # element -> its key
        self.attributes = builder.attributes  # element -> [(key, value)], xmlns included
        self.check_subtree_depth = builder.check_depth  # (element, its depth): may raise

    def text(self, text: str | None) -> Any:
        """Joined character data as xmltodict keeps it, or None when it is dropped."""
        if not text:
            return None
        if self._strip:
            text = text.strip()
            if not text:
                return None
        return self._infer(text) if self._infer else text

    def check_depth(self, element: etree._Element, depth: int) -> None:
        if depth > self.max_depth:
            self._depth_error(element.sourceline)

    def _depth_error(self, line: int | None) -> None:
        raise ConversionError(
            DEPTH_LIMIT_EXCEEDED,
            f"elements are nested deeper than the limit of {self.max_depth} levels",
            line=line,
        )
