"""Whole-document formats (json, yaml) written while the document streams in.

Elements on the open path from the root are *frames*: maps written out entry by entry
as their children complete. Everything below a frame is small enough to convert whole
(values.py). A frame's keys must come out grouped in first-seen order even when
repeats are not adjacent, so each key collects its items in a spool (memory, then a
temporary file) and the frame writes the groups when it closes. The first group is
the exception and the common case -- a root's records -- and is written straight
through once it has two items, so a big document is not copied twice.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from typing import Any, BinaryIO

from .parsing import TreeStream
from .values import Values, has_element_child, is_element

SPOOL_MEMORY = 4 * 1024 * 1024  # a group's items stay in memory up to this size
_NAME_CHAR = re.compile(r"[\w.\-:]")


class _Group:
    __slots__ = ("key", "count", "is_map", "spool", "direct")

    def __init__(self, key: str) -> None:
        self.key = key
        self.count = 0
        self.is_map = False
        self.spool: Any = None
        self.direct = False


class Frame:
    """One open element being written as a map, entry by entry."""

    def __init__(self, writer: DocumentWriter, element, depth: int, level: int,
                 out: BinaryIO, prefix: bytes, attributes: list[tuple[str, Any]]) -> None:
        writer.values.check_depth(element, depth)
        self.writer = writer
        self.renderer = writer.renderer
        self.element = element
        self.depth = depth
        self.level = level  # nesting level of this map's entries
        self.out = out
        self._prefix = prefix  # replaces the start of the first bytes written (YAML "- ")
        self.groups: dict[str, _Group] = {}
        self.first_group: _Group | None = None
        self.entries = 0
        self.child: Frame | None = None
        self.texts = [element.text] if element.text else []
        self._write(self.renderer.map_open())
        if writer.attributes_sealed:
            # Attribute keys cannot meet a child's key: write them now.
            for key, value in dict(attributes).items():
                self._write_single(key, self.renderer.item(value, level), isinstance(value, dict))
        else:
            for key, value in attributes:
                self.add(key, value)

    # -- writing -------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self._prefix and data:
            data = self._prefix + data[len(self._prefix):]
            self._prefix = b""
        self.out.write(data)

    def _write_single(self, key: str, item: bytes, is_map: bool) -> None:
        renderer = self.renderer
        header = renderer.single_header(key, self.level, self.entries == 0, is_map)
        self._write(header + item[len(renderer.item_prefix(self.level)):])
        self.entries += 1

    def _group(self, key: str) -> _Group:
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group(key)
            if self.first_group is None:
                self.first_group = group
        return group

    def _go_direct(self, group: _Group) -> None:
        """The first group has become a list: write it out and keep appending there."""
        self._write(self.renderer.list_header(group.key, self.level, self.entries == 0))
        self.entries += 1
        if group.spool is not None:
            group.spool.seek(0)
            shutil.copyfileobj(group.spool, self.out, 1 << 20)
            group.spool.close()
            group.spool = None
        group.direct = True

    def _sink(self, group: _Group, is_map: bool) -> BinaryIO:
        """Where the group's next item goes, with the separator already written."""
        if not group.direct and group is self.first_group and (
            group.count or group.key in self.writer.values.force
        ):
            self._go_direct(group)
        if group.count == 0:
            group.is_map = is_map
        if group.direct:
            sink = self.out
        else:
            if group.spool is None:
                group.spool = tempfile.SpooledTemporaryFile(SPOOL_MEMORY, "w+b")  # noqa: SIM115 -- closed in finish()
            sink = group.spool
        if group.count:
            sink.write(self.renderer.separator)
        group.count += 1
        return sink

    def add(self, key: str, value: Any) -> None:
        """A complete value under `key`."""
        group = self.groups.get(key)
        if group is not None and group.direct:  # the hot path: a root's next record
            self.out.write(self.renderer.separator + self.renderer.item(value, self.level))
            group.count += 1
            return
        is_map = isinstance(value, dict)
        self._sink(self._group(key), is_map).write(self.renderer.item(value, self.level))

    def open_child(self, key: str, element) -> Frame:
        """A child element that is still open: stream it as this map's next item."""
        sink = self._sink(self._group(key), True)
        attributes = self.writer.values.attributes(element)
        self.child = Frame(self.writer, element, self.depth + 1, self.level + 1, sink,
                           self.renderer.item_prefix(self.level), attributes)
        return self.child

    def finish(self) -> None:
        """The element is complete: add its text, write every group, close the map."""
        values = self.writer.values
        text = values.text("".join(self.texts)) if self.texts else None
        if text is not None:
            self.add(values.text_key, text)
        renderer = self.renderer
        skip = len(renderer.item_prefix(self.level))
        for group in self.groups.values():
            if group.direct:
                self._write(renderer.list_footer())
                continue
            spool = group.spool
            spool.seek(0)
            if group.count > 1 or group.key in values.force:
                self._write(renderer.list_header(group.key, self.level, self.entries == 0))
                shutil.copyfileobj(spool, self.out, 1 << 20)
                self._write(renderer.list_footer())
            else:
                first = spool.read(max(skip, 1 << 16))
                self._write(renderer.single_header(group.key, self.level, self.entries == 0,
                                                   group.is_map) + first[skip:])
                shutil.copyfileobj(spool, self.out, 1 << 20)
            spool.close()
            self.entries += 1
        self._write(renderer.map_close())


class DocumentWriter:
    """Drives a TreeStream and writes the whole document through a renderer."""

    def __init__(self, stream: TreeStream, out: BinaryIO, renderer, values: Values) -> None:
        self.stream = stream
        self.out = out
        self.renderer = renderer
        self.values = values
        self.root_frame: Frame | None = None
        self._root_as_list = False
        options = values.options
        prefix = options.attr_prefix
        self.attributes_sealed = (
            bool(prefix)
            and not _NAME_CHAR.match(prefix[0])
            and options.namespaces != "expand"
            and not options.text_key.startswith(prefix)
        )

    def run(self) -> None:
        for final in self.stream:
            self._harvest_root(final)

    def _harvest_root(self, final: bool) -> None:
        root = self.stream.root
        renderer = self.renderer
        if self.root_frame is None:
            if not has_element_child(root):
                if final:
                    self._write_small_root(root)
                return
            key = self.values.key(root)
            self._root_as_list = key in self.values.force
            self.out.write(renderer.document_open(key, self._root_as_list))
            attributes = self.values.attributes(root)
            prefix = renderer.item_prefix(0) if self._root_as_list else b""
            self.root_frame = Frame(self, root, 1, 1, self.out, prefix, attributes)
        self._harvest(self.root_frame, final)
        if final:
            self.root_frame.finish()
            self.out.write(renderer.document_close(self._root_as_list))

    def _write_small_root(self, root) -> None:
        """A root without child elements: its whole value is already here."""
        key = self.values.key(root)
        value = self.values.value(root, 1)
        if key in self.values.force:
            value = [value]
        self.out.write(self.renderer.document(key, value))

    def _harvest(self, frame: Frame, final: bool) -> None:
        """Convert the frame's complete children, then descend into the open one."""
        element = frame.element
        values = self.values
        count = len(element)
        complete = count if final else count - 1
        start = 0
        if frame.child is not None and complete > 0:
            # The open child is the first element left; it has now ended.
            self._harvest(frame.child, True)
            frame.child.finish()
            frame.child = None
            tail = element[0].tail
            if tail:
                frame.texts.append(tail)
            start = 1
        if complete > start:
            value = values.value
            key = values.key
            depth = frame.depth + 1
            texts = frame.texts
            add = frame.add
            for child in element[start:complete]:
                if is_element(child):
                    add(key(child), value(child, depth))
                tail = child.tail
                if tail:
                    texts.append(tail)
        if complete > 0:
            del element[:complete]
        if not final and count - complete == 1:
            if frame.child is None:
                last = element[0]
                if not is_element(last) or not has_element_child(last):
                    return  # only text so far: wait for it to grow or end
                frame.open_child(values.key(last), last)
            self._harvest(frame.child, False)


def write_document(stream: TreeStream, out: BinaryIO, renderer, values: Values) -> None:
    DocumentWriter(stream, out, renderer, values).run()

