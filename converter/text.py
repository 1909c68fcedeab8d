"""Plain text: every non-empty text node, stripped, in document order, one per line.

With include_attributes, an element's attribute values come before its text. The engine
writes the text itself (converter/_accel.pyx, text mode); this module passes it on.
"""

from __future__ import annotations

from typing import BinaryIO

from .limits import Limits
from .options import Options
from .parsing import feed_all, make_engine
from .source import Source


def write_text(source: Source, dest: BinaryIO, options: Options, limits: Limits) -> None:
    engine = make_engine("text", options, limits)
    engine.set_output(dest.write)
    for _ in feed_all(engine, source, options.max_depth):
        pass
