"""Indented JSON, made on the fly from the compact JSON the engine writes.

Re-indenting a token stream keeps the streaming engine single-minded (compact
output only) and needs no memory beyond one token.
"""

from __future__ import annotations

import re
from typing import BinaryIO

_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\],:]|[^"{}\[\],:\s]+|\s+', re.DOTALL)
_OPEN = frozenset(b"{[")
_CLOSE = frozenset(b"}]")


class Reindenter:
    """A write-only binary stream: compact JSON in, indented JSON out to `dest`."""

    def __init__(self, dest: BinaryIO, indent: int) -> None:
        self.dest = dest
        self.unit = b" " * indent
        self.depth = 0
        self.carry = b""
        self.after_open = False  # just wrote an opening bracket: newline pending

    def __enter__(self) -> Reindenter:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()

    def write(self, data: bytes) -> int:
        self._process(self.carry + data, final=False)
        return len(data)

    def close(self) -> None:
        self._process(self.carry, final=True)
        self.dest.write(b"\n")

    def _newline(self) -> bytes:
        return b"\n" + self.unit * self.depth

    def _process(self, buffer: bytes, final: bool) -> None:
        out = []
        position = 0
        end = len(buffer)
        match = _TOKEN.match
        while position < end:
            found = match(buffer, position)
            if found is None or (not final and found.end() == end and buffer[position] not in
                                 b"{}[],:"):
                break  # an incomplete string or scalar: wait for the rest
            token = found.group()
            position = found.end()
            first = token[0]
            if first in b" \t\r\n":
                continue
            if self.after_open:
                self.after_open = False
                if first in _CLOSE:
                    self.depth -= 1
                    out.append(token)
                    continue
                out.append(self._newline())
            if first in _OPEN:
                out.append(token)
                self.depth += 1
                self.after_open = True
            elif first in _CLOSE:
                self.depth -= 1
                out.append(self._newline() + token)
            elif token == b",":
                out.append(b"," + self._newline())
            elif token == b":":
                out.append(b": ")
            else:
                out.append(token)
        self.carry = buffer[position:]
        if out:
            self.dest.write(b"".join(out))
