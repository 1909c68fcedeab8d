"""An element's value exactly as xmltodict.parse builds it, from an lxml subtree.

This is the hot path of every format: it runs once per element, so it is written
for speed (local names, one dict lookup per key, no per-element allocation that
xmltodict would not also make).

xmltodict's rules, which this mirrors:
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
from collections.abc import Callable, Iterator
from typing import Any

from lxml import etree

from .errors import DEPTH_LIMIT_EXCEEDED, ConversionError
from .naming import AMBIGUOUS, Naming
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


def depth_error(element: etree._Element, limit: int) -> ConversionError:
    return ConversionError(
        DEPTH_LIMIT_EXCEEDED,
        f"elements are nested deeper than the limit of {limit} levels",
        line=element.sourceline,
    )


def _raise_depth_error(limit: int):
    def raise_for(line: int | None) -> None:
        raise ConversionError(
            DEPTH_LIMIT_EXCEEDED,
            f"elements are nested deeper than the limit of {limit} levels",
            line=line,
        )

    return raise_for


def accelerator(options: Options):
    """The C builder (converter/_accel.pyx) for these options, or None when the
    extension is not built; the Python code below is then used, with the same results."""
    if not ACCELERATE:
        return None
    try:
        from ._accel import Builder
    except ImportError:
        return None
    return Builder(options.namespaces, options.attr_prefix, options.text_key,
                   frozenset(options.force_list), options.strip_whitespace,
                   infer if options.types == "infer" else None, options.max_depth,
                   _raise_depth_error(options.max_depth))


ACCELERATE = True  # tests switch this off to check the Python reference path


class Values:
    """Builds xmltodict values for complete elements, and the pieces frames need."""

    def __init__(self, options: Options, naming: Naming) -> None:
        self.options = options
        self.naming = naming
        self.text_key = options.text_key
        self.force = frozenset(options.force_list)
        self.max_depth = options.max_depth
        self._infer = infer if options.types == "infer" else None
        self._strip = options.strip_whitespace
        self.value = self._build(declarations=False)
        self._checks_declarations = False
        self._builder = accelerator(options)
        if self._builder is not None:
            self.value = self._builder.value
            self.key = self._builder.key

    def follow(self, stream) -> Iterator[bool]:
        """Iterate a TreeStream once its root exists, keeping names up to date."""
        for final in stream:
            if stream.root is None:
                continue
            self.naming.update(stream)
            if self._builder is not None:
                pass  # libxml2's nodes carry every declaration and prefix exactly
            elif self.naming.nested_declarations and not self._checks_declarations:
                # Declarations below the root: switch to the slower path that checks
                # every element for declarations of its own.
                self.value = self._build(declarations=True)
                self._checks_declarations = True
            yield final

    # -- pieces used by streaming frames -----------------------------------------------
    def key(self, element: etree._Element) -> str:
        return self.naming.element_key(element)

    def attributes(self, element: etree._Element, declarations=None) -> list[tuple[str, Any]]:
        """The element's attribute entries, xmlns declarations placed as xmltodict does."""
        if self._builder is not None:
            return self._builder.attributes(element)
        naming = self.naming
        keys = naming.attribute_keys
        entries = []
        for name, value in element.items():
            key = keys[name]
            if key is AMBIGUOUS:
                key = naming.attribute_key(element, name)
            entries.append((key, self._infer(value) if self._infer else value))
        if declarations is None:
            if not naming.nested_declarations:
                return entries
            declarations = naming.own_declarations(element)
        extra = naming.declaration_entries(declarations)
        return entries + extra if naming.mode == "expand" else extra + entries

    def text(self, text: str | None) -> Any:
        """Joined character data as xmltodict keeps it, or None when it is dropped."""
        if not text:
            return None
        if self._strip:
            text = text.strip()
            if not text:
                return None
        return self._infer(text) if self._infer else text

    def root_value(self, element: etree._Element, declarations) -> Any:
        """The value of a root element that has no child elements."""
        entries = self.attributes(element, declarations)
        text = self.text(element.text)
        if not entries:
            return text
        value: dict[str, Any] = dict(entries)
        if text is not None:
            add(value, self.text_key, text, self.force)
        return value

    # -- the hot path -------------------------------------------------------------------
    def _build(self, declarations: bool) -> Callable[[etree._Element, int], Any]:
        naming = self.naming
        element_keys = naming.element_keys
        attribute_keys = naming.attribute_keys
        text_key = self.text_key
        force = self.force
        max_depth = self.max_depth
        strip = self._strip
        infer_ = self._infer
        attributes = self.attributes
        list_ = list

        def value(el, depth):
            if depth > max_depth:
                raise depth_error(el, max_depth)
            if declarations:
                entries = attributes(el)
                d = dict(entries) if entries else None
            else:
                items = el.items()
                if items:
                    if infer_ is None:
                        d = {attribute_keys[k]: v for k, v in items}
                    else:
                        d = {attribute_keys[k]: infer_(v) for k, v in items}
                    if AMBIGUOUS in d:
                        d = dict(attributes(el))
                else:
                    d = None
            text = el.text
            if len(el):
                if d is None:
                    d = {}
                depth += 1
                for c in el:
                    key = element_keys[c.tag]
                    if key is AMBIGUOUS:
                        key = naming.element_key(c)
                    v = value(c, depth)
                    if key in d:
                        o = d[key]
                        if type(o) is list_:
                            o.append(v)
                        else:
                            d[key] = [o, v]
                    elif force and key in force:
                        d[key] = [v]
                    else:
                        d[key] = v
                    t = c.tail
                    if t:
                        text = text + t if text else t
            if text:
                if strip:
                    text = text.strip() or None
                if text is not None and infer_ is not None:
                    text = infer_(text)
            else:
                text = None
            if d is None:
                return text
            if text is not None:
                if text_key in d or force:
                    add(d, text_key, text, force)
                else:
                    d[text_key] = text
            return d

        return value


def add(mapping: dict, key: str, value: Any, force) -> None:
    """xmltodict's push_data: group a repeated key into a list at its first place."""
    if key in mapping:
        existing = mapping[key]
        if type(existing) is list:
            existing.append(value)
        else:
            mapping[key] = [existing, value]
    elif key in force:
        mapping[key] = [value]
    else:
        mapping[key] = value
