"""Indented JSON, made on the fly from the compact JSON the engine writes.

Re-indenting a token stream keeps the streaming engine single-minded (compact
output only) and needs no memory beyond one token: strings are copied through as they
come, however long, and what is made is written every FLUSH_BYTES (deep nesting makes
lines of depth × indent spaces, so the output of one write can be far larger than it).
"""

from __future__ import annotations

import re
from typing import BinaryIO

_PLAIN = re.compile(rb'[^"\\]*')  # inside a string, up to a quote or a backslash
_SCALAR = re.compile(rb'[^"{}\[\],:\s]+')
_SPACE = frozenset(b" \t\r\n")
FLUSH_BYTES = 1 << 20


class Reindenter:
    """A write-only binary stream: compact JSON in, indented JSON out to `dest`."""

    def __init__(self, dest: BinaryIO, indent: int) -> None:
        self.dest = dest
        self.unit = b" " * indent
        self.depth = 0
        self.carry = b""
        self.after_open = False  # just wrote an opening bracket: newline pending
        self.in_string = False

    def __enter__(self) -> Reindenter:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()

    def write(self, data: bytes) -> int:
        self._process(self.carry + data if self.carry else data, final=False)
        return len(data)

    def close(self) -> None:
        self._process(self.carry, final=True)
        self.dest.write(b"\n")

    def _newline(self) -> bytes:
        return b"\n" + self.unit * self.depth

    def _process(self, buffer: bytes, final: bool) -> None:
        out: list[bytes] = []
        made = 0
        position = 0
        end = len(buffer)
        self.carry = b""
        while position < end:
            if made > FLUSH_BYTES:
                self.dest.write(b"".join(out))
                out, made = [], 0
            if self.in_string:
                stop = _PLAIN.match(buffer, position).end()
                if stop > position:
                    out.append(buffer[position:stop])
                    made += stop - position
                position = stop
                if position == end:
                    break
                if buffer[position] == 0x5C:  # a backslash escapes the next byte
                    if position + 1 == end:
                        self.carry = buffer[position:]
                        break
                    out.append(buffer[position:position + 2])
                    position += 2
                else:
                    out.append(b'"')
                    position += 1
                    self.in_string = False
                continue
            first = buffer[position]
            if first in _SPACE:
                position += 1
                continue
            if first in b"{}[],:" or first == 0x22:
                token = buffer[position:position + 1]
                position += 1
            else:
                found = _SCALAR.match(buffer, position)
                if found.end() == end and not final:
                    self.carry = buffer[position:]  # an incomplete scalar: wait for the rest
                    break
                token = found.group()
                position = found.end()
            if self.after_open:
                self.after_open = False
                if token in (b"}", b"]"):
                    self.depth -= 1
                    out.append(token)
                    continue
                out.append(self._newline())
            if token in (b"{", b"["):
                out.append(token)
                self.depth += 1
                self.after_open = True
            elif token in (b"}", b"]"):
                self.depth -= 1
                out.append(self._newline() + token)
            elif token == b",":
                out.append(b"," + self._newline())
            elif token == b":":
                out.append(b": ")
            else:
                if token == b'"':
                    self.in_string = True
                out.append(token)
            made += len(out[-1])
        if out:
            self.dest.write(b"".join(out))
