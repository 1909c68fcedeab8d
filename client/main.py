"""`xmlconv`'s entry point: `convert` goes straight to the converter's own CLI (converter.cli),
every other command to client/cli.py. Split so that a local conversion loads nothing of the
HTTP client (requests, tqdm): its start is part of every conversion's time."""

from __future__ import annotations

import sys


def convert(argv: list[str]) -> int:
    """`xmlconv convert …`, exactly as converter.cli runs it."""
    from converter.cli import main as convert_main

    return convert_main(argv, prog="xmlconv")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["convert"]:
        return convert(argv)
    from .cli import main as commands_main

    return commands_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
