"""One peer's run for `make bench`: parse the whole file into memory, write it as JSON.

    python bench/peers.py NAME INPUT OUTPUT

Each peer is an xmltodict-compatible parser (its package named in PEERS) and orjson, as a
new user would combine them; run in its own process so that its time and peak RSS are its
own. A peer whose package is missing exits with status 3 and says so.
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


def main(argv: list[str]) -> int:
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
