"""Whole-document formats (json, yaml) written while the document streams in.

The engine (converter/_accel.pyx) builds the value of every element that completes within
a chunk. An element still open at the end of a chunk, and holding elements, becomes a
*frame*: a map written out entry by entry as its children complete (the engine's "open",
"add" and "close" events). A frame's keys must come out grouped in first-seen order even
when repeats are not adjacent, so each key collects its items in a spool (memory, then a
temporary file) and the frame writes the groups when it closes. The first group is the
exception and the common case -- a root's records -- and is written straight through
once it has two items, so a big document is not copied twice.

Memory is bounded whatever the shape: a group's spool is a bytes buffer until it passes
SPOOL_MEMORY, or until all the buffers of the document together pass MEMORY_BUDGET, and a
temporary file after that; and the groups alive at once (one per distinct child name per open
element) are at most Limits.max_names (TOO_MANY_NAMES).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from typing import Any, BinaryIO

from .errors import TOO_MANY_NAMES, ConversionError
from .limits import Limits
from .options import Options
from .parsing import feed_all, make_engine
from .render import Renderer
from .source import Source

SPOOL_MEMORY = 4 * 1024 * 1024  # a group's items stay in memory up to this size
MEMORY_BUDGET = 32 * 1024 * 1024  # and all groups' items together up to this size
_NAME_CHAR = re.compile(r"[\w.\-:]")


class _Budget:
    """What the groups of one document hold: bytes in memory, and groups alive."""

    __slots__ = ("memory", "groups", "max_groups")

    def __init__(self, max_groups: int) -> None:
        self.memory = 0
        self.groups = 0
        self.max_groups = max_groups

    def add_group(self) -> None:
        self.groups += 1
        if self.groups > self.max_groups:
            raise ConversionError(
                TOO_MANY_NAMES, f"the open elements have more than {self.max_groups} distinct "
                                "child names between them")


class _Spool:
    """A group's items: a buffer in memory, or a temporary file once it is large."""

    __slots__ = ("buffer", "file", "budget")

    def __init__(self, budget: _Budget) -> None:
        self.buffer = bytearray()
        self.file: Any = None
        self.budget = budget

    def write(self, data: bytes) -> None:
        if self.file is None:
            size = len(data)
            if (len(self.buffer) + size <= SPOOL_MEMORY
                    and self.budget.memory + size <= MEMORY_BUDGET):
                self.buffer += data
                self.budget.memory += size
                return
            self.file = tempfile.TemporaryFile()  # noqa: SIM115 -- closed in close()
            self.file.write(self.buffer)
            self.budget.memory -= len(self.buffer)
            self.buffer = bytearray()
        self.file.write(data)

    def pieces(self, skip: int = 0) -> Iterator[bytes]:
        """The items written, less the first `skip` bytes, in pieces."""
        if self.file is None:
            yield bytes(memoryview(self.buffer)[skip:])
            return
        self.file.seek(0)
        first = self.file.read(max(skip, 1 << 20))
        yield first[skip:]
        while piece := self.file.read(1 << 20):
            yield piece

    def close(self) -> None:
        self.budget.memory -= len(self.buffer)
        self.buffer = bytearray()
        if self.file is not None:
            self.file.close()


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

    def __init__(self, renderer: Renderer, force: frozenset[str], level: int,
                 out: BinaryIO, prefix: bytes, budget: _Budget) -> None:
        self.budget = budget
        self.renderer = renderer
        self.force = force
        self.level = level  # nesting level of this map's entries
        self.out = out
        self._prefix = prefix  # replaces the start of the first bytes written (YAML "- ")
        self.groups: dict[str, _Group] = {}
        self.first_group: _Group | None = None
        self.entries = 0
        self._write(renderer.map_open())

    # -- writing -------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self._prefix and data:
            data = self._prefix + data[len(self._prefix):]
            self._prefix = b""
        self.out.write(data)

    def _group(self, key: str) -> _Group:
        group = self.groups.get(key)
        if group is None:
            self.budget.add_group()
            group = self.groups[key] = _Group(key)
            if self.first_group is None:
                self.first_group = group
        return group

    def _go_direct(self, group: _Group) -> None:
        """The first group has become a list: write it out and keep appending there."""
        self._write(self.renderer.list_header(group.key, self.level, self.entries == 0))
        self.entries += 1
        if group.spool is not None:
            for piece in group.spool.pieces():
                self.out.write(piece)
            group.spool.close()
            group.spool = None
        group.direct = True

    def sink(self, key: str, is_map: bool) -> BinaryIO:
        """Where the next item under `key` goes, with the separator already written."""
        group = self._group(key)
        if not group.direct and group is self.first_group and (
            group.count or group.key in self.force
        ):
            self._go_direct(group)
        if group.count == 0:
            group.is_map = is_map
        if group.direct:
            sink = self.out
        else:
            if group.spool is None:
                group.spool = _Spool(self.budget)
            sink = group.spool
        if group.count:
            sink.write(self.renderer.separator)
        group.count += 1
        return sink

    def add(self, key: str, value: Any) -> None:
        """A complete value under `key`."""
        self.sink(key, isinstance(value, dict)).write(self.renderer.item(value, self.level))

    def add_all(self, key: str, values: list) -> None:
        """Complete values under `key`: after the first two, one write for them all."""
        done = 0
        group = self.groups.get(key)
        while done < len(values) and (group is None or group.count < 2):
            self.add(key, values[done])
            done += 1
            group = self.groups[key]
        if done < len(values):
            sink = self.out if group.direct else group.spool
            sink.write(self.renderer.separator
                       + self.renderer.items(values[done:] if done else values, self.level))
            group.count += len(values) - done

    def write_single(self, key: str, value: Any) -> None:
        """A key that can never repeat (an attribute's, see DocumentWriter): written now."""
        item = self.renderer.item(value, self.level)
        header = self.renderer.single_header(key, self.level, self.entries == 0,
                                             isinstance(value, dict))
        self._write(header + item[len(self.renderer.item_prefix(self.level)):])
        self.entries += 1

    def add_entries(self, entries: list[tuple[str, Any]], sealed: int) -> None:
        """An element's attributes and complete children, as the engine grouped them; the
        first `sealed` are attributes whose keys no child can have."""
        for key, value in entries[:sealed]:
            self.write_single(key, value)
        for key, value in entries[sealed:]:
            if type(value) is list:
                for item in value:
                    self.add(key, item)
            else:
                self.add(key, value)

    def finish(self, text: Any, text_key: str) -> None:
        """The element is complete: add its text, write every group, close the map."""
        if text is not None:
            self.add(text_key, text)
        renderer = self.renderer
        skip = len(renderer.item_prefix(self.level))
        for group in self.groups.values():
            if group.direct:
                self._write(renderer.list_footer())
                continue
            spool = group.spool
            if group.count > 1 or group.key in self.force:
                self._write(renderer.list_header(group.key, self.level, self.entries == 0))
                for piece in spool.pieces():
                    self.out.write(piece)
                self._write(renderer.list_footer())
            else:
                pieces = spool.pieces(skip)
                self._write(renderer.single_header(group.key, self.level, self.entries == 0,
                                                   group.is_map) + next(pieces))
                for piece in pieces:
                    self.out.write(piece)
            spool.close()
            self.entries += 1
        self.budget.groups -= len(self.groups)
        self._write(renderer.map_close())


class DocumentWriter:
    """Writes the whole document through a renderer from the engine's events."""

    def __init__(self, out: BinaryIO, renderer: Renderer, options: Options,
                 max_names: int) -> None:
        self.out = out
        self.budget = _Budget(max_names)
        self.renderer = renderer
        self.force = frozenset(options.force_list)
        self.text_key = options.text_key
        self.frames: list[Frame] = []
        self._root_as_list = False
        self._ending: tuple | None = None  # the root's end, written once the parser agrees
        # Attribute keys that no child key or text key can equal are written at once, so
        # that a root's records are its first group, written straight through, and not
        # spooled behind the root's attributes. A child key never starts with a prefix
        # that no name can start with -- but with expand, keys begin with any URI.
        prefix = options.attr_prefix
        self.attributes_sealed = (
            bool(prefix)
            and not _NAME_CHAR.match(prefix[0])
            and options.namespaces != "expand"
            and not options.text_key.startswith(prefix)
        )

    def handle(self, events: list[tuple]) -> None:
        frames = self.frames
        for event in events:
            kind = event[0]
            if kind == "add":
                frames[-1].add_all(event[1], event[2])
            elif kind == "open":
                self._open(event[1], event[2], event[3] if self.attributes_sealed else 0)
            elif kind == "close" and len(frames) > 1:
                frames.pop().finish(event[1], self.text_key)
            else:  # the root's end, or a root that never became a frame ("document")
                self._ending = event

    def end(self) -> None:
        """The document parsed to its end: write the root's end. Until then junk after the
        root may still turn up, and the output must not look complete."""
        event = self._ending
        if event[0] == "close":
            self.frames.pop().finish(event[1], self.text_key)
            self.out.write(self.renderer.document_close(self._root_as_list))
        else:
            self.out.write(self.renderer.document(event[1], event[2]))

    def _open(self, key: str, entries: list[tuple[str, Any]], sealed: int) -> None:
        renderer = self.renderer
        if not self.frames:
            self._root_as_list = key in self.force
            self.out.write(renderer.document_open(key, self._root_as_list))
            prefix = renderer.item_prefix(0) if self._root_as_list else b""
            frame = Frame(renderer, self.force, 1, self.out, prefix, self.budget)
        else:
            parent = self.frames[-1]
            frame = Frame(renderer, self.force, parent.level + 1, parent.sink(key, True),
                          renderer.item_prefix(parent.level), self.budget)
        frame.add_entries(entries, sealed)
        self.frames.append(frame)


def write_document(src: Source, dest: BinaryIO, renderer: Renderer, options: Options,
                   limits: Limits) -> None:
    """The whole document through `renderer` from Python values: the reference layout the
    engine's own writers (json, yaml: converter/_jsonout.pxi) are tested against."""
    writer = DocumentWriter(dest, renderer, options, limits.max_names)
    for events in feed_all(make_engine("document", options, limits), src, options.max_depth):
        writer.handle(events)
    writer.end()
