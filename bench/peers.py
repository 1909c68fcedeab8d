"""One peer's run for `make bench`: parse the whole file into memory, write it as JSON.

    python bench/peers.py NAME INPUT OUTPUT
    python bench/peers.py --expat INPUT


Each peer is an xmltodict-compatible parser (its package named in PEERS) and orjson, as a
new user would combine them; run in its own process so that its time and peak RSS are its
own. A peer whose package is missing exits with status 3 and says so.

`--expat` is a floor, not a peer: the bare expat parse of the whole file in memory (pyexpat,
no handlers), the parser xmltodict uses, at its own speed (issue 19's yardstick).
"""

from __future__ import annotations

import importlib
import sys

# name shown in the table -> module to import
PEERS = {
    "orxml": "orxml",
    "xmltodict-rs": "xmltodict_rs",
    "rapidxmltodict": "rapidxmltodict",
    "quick-xmltodict": "quick_xmltodict",
    "xmltodict": "xmltodict",
}
MISSING = 3


def bare_expat(source: str) -> int:
    import pyexpat

    with open(source, "rb") as stream:
        data = stream.read()
    pyexpat.ParserCreate().Parse(data, True)
    return 0


def main(argv: list[str]) -> int:
    if argv[0] == "--expat":
        return bare_expat(argv[1])
    name, source, output = argv
    try:
        module = importlib.import_module(PEERS[name])
        import orjson
    except ImportError as exc:
        print(f"{name}: not installed ({exc})", file=sys.stderr)
        return MISSING
    with open(source, "rb") as stream:
        data = stream.read()
    try:
        document = module.parse(data)
    except TypeError:  # a peer that takes text only
        document = module.parse(data.decode())
    with open(output, "wb") as out:
        out.write(orjson.dumps(document))
        out.write(b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
