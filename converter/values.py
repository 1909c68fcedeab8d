"""Typed values (types=infer): the one conversion of text the engine calls back into Python.

Everything else about an element's value -- xmltodict's rules below -- is built in C, by
converter/_accel.pyx, as libxml2 reports the document:
- attributes first (prefixed keys), then children in document order, then the text;
- a repeated child key turns into a list at its first position, even when the
  repeats are not adjacent;
- text is all character data directly inside the element joined, then stripped;
  whitespace-only text disappears;
- an element with neither attributes nor children is its text, or None.
"""

from __future__ import annotations

import math
import re
from typing import Any

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
