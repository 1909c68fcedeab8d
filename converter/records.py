"""Record formats (jsonl, csv): one output record per repeated element.

The record element is named by `record_path` (`orders/order`: path of keys from the
root, a component matches an element's key or its local name). Without it the
engine picks one: the element path with the most siblings of the same name under a
single parent, judged on the first SAMPLE_BYTES of the document (ties go to the
shallower path, then the earlier one). A document without repeats is one record.
"""

from __future__ import annotations

from collections import Counter
from typing import BinaryIO

from lxml import etree

from .errors import RECORD_NOT_FOUND, ConversionError
from .parsing import TreeStream
from .values import Values, is_element

SAMPLE_BYTES = 4 * 1024 * 1024


def pick_record_path(root: etree._Element, values: Values) -> list[str]:
    """The most repeated element path in the tree so far (see module docstring)."""
    most: dict[tuple[str, ...], int] = {}
    key = values.key
    stack = [(root, (key(root),))]
    while stack:
        element, path = stack.pop()
        counts = Counter(key(child) for child in element if is_element(child))
        for child_key, count in counts.items():
            child_path = (*path, child_key)
            if count > most.get(child_path, 0):
                most[child_path] = count
        stack.extend((child, (*path, key(child))) for child in reversed(element)
                     if len(child) and is_element(child))
    order = {path: index for index, path in enumerate(most)}
    repeated = [path for path, count in most.items() if count > 1]
    if not repeated:
        return [key(root)]
    best = max(repeated, key=lambda p: (most[p], -len(p), -order[p]))
    return list(best)


class RecordWalker:
    """Yields the value of each record element as the document streams in."""

    def __init__(self, stream: TreeStream, values: Values, record_path: str | None) -> None:
        self.stream = stream
        self.values = values
        self.path: list[str] | None = record_path.split("/") if record_path else None
        self.explicit = record_path is not None
        # With expanded namespaces keys hold URIs, which a slash path cannot spell:
        # components may then name the local name.
        self.local_names = values.options.namespaces == "expand"

    def __iter__(self):
        for final in self.stream:
            root = self.stream.root
            if self.path is None:
                if not final and self.stream.source.bytes_done < SAMPLE_BYTES:
                    continue  # keep the sample in memory until we can judge it
                self.path = pick_record_path(root, self.values)
            if len(self.path) == 1:
                if final and self._matches(root, self.path[0]):
                    yield self.values.value(root, 1)
                continue
            if not self._matches(root, self.path[0]):
                return
            yield from self._harvest(root, 0, final)

    @property
    def record_path(self) -> str | None:
        return "/".join(self.path) if self.path else None

    def _matches(self, element, component: str) -> bool:
        if not is_element(element):
            return False
        if self.values.key(element) == component:
            return True
        return self.local_names and etree.QName(element).localname == component

    def _harvest(self, element, index: int, final: bool):
        """`element` matches path[index]; yield the records complete below it."""
        target = self.path[index + 1]
        is_parent = index + 2 == len(self.path)
        count = len(element)
        complete = count if final else count - 1
        if complete > 0:
            value = self.values.value
            depth = index + 2
            for child in element[:complete]:
                if self._matches(child, target):
                    if is_parent:
                        yield value(child, depth)
                    else:
                        yield from self._harvest(child, index + 1, True)
            del element[:complete]
        if not final and count - complete == 1:
            last = element[0]
            if not self._matches(last, target):
                _prune(last)
            elif not is_parent:
                yield from self._harvest(last, index + 1, False)


def _prune(element) -> None:
    """Drop the complete part of an open subtree that holds no records."""
    while len(element):
        if len(element) > 1:
            del element[: len(element) - 1]
        element = element[0]


def write_records(stream: TreeStream, dest: BinaryIO, format: str,
                  values: Values) -> tuple[str | None, int]:
    walker = RecordWalker(stream, values, values.options.record_path)
    if format == "jsonl":
        from .jsonl import write_jsonl

        count = write_jsonl(walker, dest)
    else:
        from .tabular import write_csv

        count = write_csv(walker, dest, values.options.text_key)
    if count == 0 and walker.explicit:
        raise ConversionError(
            RECORD_NOT_FOUND, f"no element matches record_path '{walker.record_path}'"
        )
    return walker.record_path, count
