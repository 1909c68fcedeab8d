"""Plain text: every non-empty text node, stripped, in document order, one per line.

With include_attributes, an element's attribute values come before its text.
"""

from __future__ import annotations

from typing import BinaryIO

from lxml import etree

from .options import Options
from .parsing import TreeStream
from .values import Values, is_element


class TextWriter:
    def __init__(self, dest: BinaryIO, options: Options, values: Values) -> None:
        self.dest = dest
        self.values = values  # only for the depth limit: text needs no values
        self.separator = options.separator
        self.attributes = options.include_attributes
        self.open_path: list = []  # elements whose start (attributes, text) is written
        self.pieces: list[str] = []
        self.walk = self.attributes  # iterwalk instead of itertext (see write_text)

    def _emit(self, text: str | None) -> None:
        if text:
            text = text.strip()
            if text:
                self.pieces.append(text)

    def _start(self, element) -> None:
        if self.attributes:
            for value in element.values():
                self._emit(value)
        self._emit(element.text)

    def _subtree(self, element) -> None:
        """All text of a complete element, its own tail excluded."""
        if not self.walk:
            emit = self._emit
            for text in element.itertext():
                emit(text)
            return
        for event, node in etree.iterwalk(element, events=("start", "end")):
            if event == "start":
                if is_element(node):
                    self._start(node)
            elif node is not element:
                self._emit(node.tail)

    def harvest(self, element, depth: int, final: bool) -> None:
        path = self.open_path
        if len(path) <= depth or path[depth] is not element:
            del path[depth:]
            self.values.check_depth(element, depth + 1)
            if len(element) == 0 and not final:
                return  # its text may still grow
            self._start(element)
            path.append(element)
        count = len(element)
        complete = count if final else count - 1
        start = 0
        if complete > 0 and len(path) > depth + 1 and path[depth + 1] is element[0]:
            self.harvest(element[0], depth + 1, True)
            self._emit(element[0].tail)
            del path[depth + 1:]
            start = 1
        for child in element[start:complete]:
            if is_element(child):
                self.values.check_subtree_depth(child, depth + 2)
                self._subtree(child)
            self._emit(child.tail)
        if complete > 0:
            del element[:complete]
        if not final and count - complete == 1 and is_element(element[0]):
            self.harvest(element[0], depth + 1, False)

    def flush(self) -> None:
        if self.pieces:
            separator = self.separator
            self.dest.write((separator.join(self.pieces) + separator).encode())
            self.pieces.clear()


def write_text(stream: TreeStream, dest: BinaryIO, options: Options, values: Values) -> None:
    writer = TextWriter(dest, options, values)
    for final in stream:
        if not writer.open_path:
            # Entity references survive only in documents with an external DTD (which we
            # never read); itertext would print them, so such documents take the walk.
            info = stream.root.getroottree().docinfo
            writer.walk = writer.walk or bool(info.system_url or info.public_id)
        writer.harvest(stream.root, 0, final)
        writer.flush()
