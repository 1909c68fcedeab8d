"""Temporary dispatcher (being written)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from converter.cli import main as convert_main

    return convert_main(sys.argv[1:] if argv is None else argv)
