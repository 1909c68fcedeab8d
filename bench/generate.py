"""Deterministic generator of record-oriented XML of an exact size, for benchmarks and tests.

    python bench/generate.py SIZE_MB OUT [--seed N] [--dense]

Writes exactly SIZE_MB * 2**20 bytes (the tail is padded with whitespace before the
closing root tag), e.g.

    <?xml version="1.0" encoding="UTF-8"?>
    <orders xmlns="urn:example:orders" xmlns:x="urn:example:ext" generated="...">
      <order id="1" status="shipped" x:channel="web">
        <customer>
          <name>Zoë Müller &amp; Söhne</name>
          <email>zoe.mueller@example.com</email>
          <x:tier>gold</x:tier>
        </customer>
        <items>
          <item sku="SKU-00042" qty="3">Tea &lt;green&gt; 中国</item>
          <item sku="SKU-01234" qty="1"/>
        </items>
        <price currency="EUR">12.50</price>
        <note><![CDATA[Leave at the door <no bell> & thanks]]></note>
      </order>
      <!-- an occasional comment -->
      ...
    </orders>

`--dense` writes dense records instead, as real exports often are: many short elements
with several attributes, some namespaced, about 24 bytes an element (denser than the
28 of the export that issue 13 describes):

    <feed xmlns="urn:example:feed" xmlns:g="urn:example:geo" xmlns:m="urn:example:meta">
    <e id="1" t="pt" v="2"><g:p lat="48.1" lon="11.5"/><n>ab12</n><m:k>x</m:k><s>ok</s>...</e>

Speed comes from precomputing pools of customers, item lists, prices and notes once
(from a seeded random.Random), then emitting each record as one %-format of a template
with pool entries picked by cheap index arithmetic, in batches of thousands of records
per write. The same (size, seed) always yields the same bytes.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import unicodedata
from typing import BinaryIO

MB = 1 << 20
DEFAULT_SEED = 20240501
GENERATOR_VERSION = 1  # bump when the output for a given (size, seed) changes

ROOT_OPEN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<orders xmlns="urn:example:orders" xmlns:x="urn:example:ext"'
    f' generated="2024-05-01T12:00:00Z" generator="its-convert-xml bench v{GENERATOR_VERSION}">\n'
)
ROOT_CLOSE = "</orders>\n"

_FIRST = ["Zoë", "Jürgen", "Ana", "José", "Li", "Wei", "Amélie", "Søren", "Ólafur", "Chloé",
          "Mark", "Sarah", "Omar", "Yuki", "Ivan", "Nuño", "Grace", "Björn", "Ines", "Tom"]
_LAST = ["Müller", "García", "Dupont", "王", "Smith", "O'Brien", "Nakamura", "Øster",
         "Novák", "Kowalski", "Jones", "Brontë", "Ferrari", "Lindqvist", "陈", "Çelik"]
_COMPANY = ["", "", "", " &amp; Söhne", " &amp; Co", " &lt;Ltd&gt;", " GmbH", " 株式会社"]
_TIERS = ["bronze", "silver", "gold", "platinum"]
_STATUS = ["new", "paid", "shipped", "delivered", "cancelled", "returned"]
_CHANNELS = ["web", "store", "phone", "partner"]
_PRODUCTS = ["Tea &lt;green&gt; 中国", "Coffee beans — Brazil", "Crème brûlée kit",
             "Bolts &amp; nuts", "Über-cable 2m", "Notebook A5", "Ψ mug", "Café table",
             "Socks (3 pairs)", "\"Quoted\" poster", "Lamp 'classic'", "Sushi set 寿司",
             "Gløgg spices", "Ünïcödé sampler", "Plain widget", "Drill &amp; bits"]
_NOTES = ["Leave at the door <no bell> & thanks", "Gift wrap: «Happy birthday» — 🎉",
          "Call before delivery; code <1234>", "Fragile & heavy: handle with care",
          "Deliver after 18:00 ü é 中", "if a < b && c > d then ok",
          "Nicht knicken! Ne pas plier!", "]] almost the end, not quite"]
_CURRENCIES = ["EUR", "USD", "GBP", "JPY", "CHF"]
_COMMENTS = [" batch boundary ", " audit: checked & approved ", " régularisation ",
             " see ticket #42 (ü é 中) "]


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and (c.isalnum() or c == ".")).strip(".")


def _escape_attr(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def _pools(rng: random.Random) -> dict[str, list[str]]:
    customers = []
    for i in range(997):  # prime sizes so that pool picks do not line up
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        name = f"{first} {last}{rng.choice(_COMPANY)}"
        local = _ascii(f"{first}.{last}".lower()) or f"user.{i}"
        email = f"{local}{i}@example.com"
        tier = rng.choice(_TIERS)
        customers.append(
            "    <customer>\n"
            f"      <name>{name}</name>\n"
            f"      <email>{email}</email>\n"
            f"      <x:tier>{tier}</x:tier>\n"
            "    </customer>\n"
        )
    items = []
    for _ in range(1009):
        lines = ["    <items>\n"]
        for _ in range(rng.choice((1, 1, 2, 2, 3, 3, 4, 5))):
            sku = f"SKU-{rng.randrange(100000):05d}"
            qty = rng.randrange(1, 20)
            if rng.random() < 0.2:
                lines.append(f'      <item sku="{sku}" qty="{qty}"/>\n')
            else:
                lines.append(
                    f'      <item sku="{sku}" qty="{qty}">{rng.choice(_PRODUCTS)}</item>\n'
                )
        lines.append("    </items>\n")
        items.append("".join(lines))
    prices = [
        f'    <price currency="{rng.choice(_CURRENCIES)}">'
        f"{rng.randrange(100, 1000000) / 100:.2f}</price>\n"
        for _ in range(1013)
    ]
    notes = []
    for _ in range(101):
        kind = rng.random()
        if kind < 0.35:
            notes.append(f"    <note><![CDATA[{rng.choice(_NOTES)}]]></note>\n")
        elif kind < 0.55:
            text = rng.choice(_NOTES)
            escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            notes.append(f"    <note>{escaped}</note>\n")
        elif kind < 0.65:
            notes.append("    <note/>\n")
        else:
            notes.append("")
    heads = []
    for _ in range(211):
        status = rng.choice(_STATUS)
        extra = ""
        if rng.random() < 0.3:
            extra = f' x:channel="{_escape_attr(rng.choice(_CHANNELS))}"'
        heads.append((status, extra))
    comments = [f"  <!--{c}-->\n" for c in _COMMENTS]
    return {
        "customers": customers,
        "items": items,
        "prices": prices,
        "notes": notes,
        "heads": heads,  # type: ignore[dict-item]
        "comments": comments,
    }


def generate_to(out: BinaryIO, size_mb: float, seed: int = DEFAULT_SEED) -> int:
    """Write the document to `out`; return the number of records written."""
    target = int(size_mb * MB)
    rng = random.Random(seed)
    pools = _pools(rng)
    customers, items, prices = pools["customers"], pools["items"], pools["prices"]
    notes, heads, comments = pools["notes"], pools["heads"], pools["comments"]
    nc, ni, np_, nn, nh = len(customers), len(items), len(prices), len(notes), len(heads)

    head = ROOT_OPEN.encode()
    tail = ROOT_CLOSE.encode()
    if target < len(head) + len(tail):
        raise ValueError(f"size {size_mb} MB is too small for a document")
    out.write(head)
    written = len(head)
    budget = target - len(tail)  # bytes left for records and padding
    template = '  <order id="%d" status="%s"%s>\n%s%s%s%s  </order>\n'

    record = 0
    batch = 2000
    # Per-record picks come from a second stream so that pool contents do not depend
    # on how many records are written.
    picks = random.Random(seed * 7919 + 1)
    done = False
    while not done:
        parts = []
        for _ in range(batch):
            record += 1
            r = picks.getrandbits(40)
            status, extra = heads[r % nh]
            parts.append(
                template
                % (
                    record,
                    status,
                    extra,
                    customers[(r >> 8) % nc],
                    items[(r >> 16) % ni],
                    prices[(r >> 24) % np_],
                    notes[(r >> 32) % nn],
                )
            )
            if record % 97 == 0:
                parts.append(comments[record % len(comments)])
        chunk = "".join(parts).encode()
        if written + len(chunk) > budget:
            chunk, dropped = _whole_records(chunk, budget - written, b"  </order>\n", b"<order ")
            record -= dropped
            done = True
        out.write(chunk)
        written += len(chunk)
    _pad(out, budget - written)
    out.write(tail)
    return record


DENSE_OPEN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<feed xmlns="urn:example:feed" xmlns:g="urn:example:geo" xmlns:m="urn:example:meta"'
    f' generator="its-convert-xml bench dense v{GENERATOR_VERSION}">\n'
)
DENSE_CLOSE = "</feed>\n"
_KINDS = ["pt", "ln", "ar", "rt", "st"]
_TAGS = ["ok", "none", "new", "older", "hot", "Ünïcode", "a &amp; b", "x&lt;y", "tagged"]


def _dense_pools(rng: random.Random) -> list[list[str]]:
    """Pieces of a dense record: short texts, several attributes, prefixed names."""
    points = [f'<g:p lat="{rng.uniform(-90, 90):.5f}" lon="{rng.uniform(-180, 180):.5f}"/>'
              for _ in range(1009)]
    names = [f"<n>{rng.choice(_KINDS)}-{rng.randrange(10**7):07d}</n>" for _ in range(1013)]
    metas = []
    for _ in range(997):
        parts = [f'<m:k c="{rng.randrange(9)}">{rng.choice(_TAGS)}</m:k>'
                 for _ in range(rng.choice((1, 2, 2, 3)))]
        metas.append("".join(parts))
    tails = []
    for _ in range(211):
        tail = f'<s u="{rng.randrange(100)}">{rng.choice(_TAGS)}</s>'
        if rng.random() < 0.5:
            tail += f'<d y="{rng.randrange(1990, 2030)}" m="{rng.randrange(1, 13)}"/>'
        if rng.random() < 0.3:
            tail += "<z/>"
        tails.append(tail)
    return [points, names, metas, tails]


def generate_dense_to(out: BinaryIO, size_mb: float, seed: int = DEFAULT_SEED) -> int:
    """Like generate_to, with dense records (see the module docstring)."""
    target = int(size_mb * MB)
    pools = _dense_pools(random.Random(seed))
    sizes = [len(pool) for pool in pools]
    head, tail = DENSE_OPEN.encode(), DENSE_CLOSE.encode()
    if target < len(head) + len(tail):
        raise ValueError(f"size {size_mb} MB is too small for a document")
    out.write(head)
    written = len(head)
    budget = target - len(tail)
    picks = random.Random(seed * 7919 + 1)
    template = '<e id="%d" t="%s" v="%d">%s%s%s%s</e>\n'
    record = 0
    done = False
    while not done:
        parts = []
        for _ in range(4000):
            record += 1
            r = picks.getrandbits(40)
            parts.append(template % (
                record, _KINDS[r % 5], r % 7,
                pools[0][(r >> 4) % sizes[0]], pools[1][(r >> 12) % sizes[1]],
                pools[2][(r >> 20) % sizes[2]], pools[3][(r >> 30) % sizes[3]]))
        chunk = "".join(parts).encode()
        if written + len(chunk) > budget:
            chunk, dropped = _whole_records(chunk, budget - written, b"</e>\n", b"<e ")
            record -= dropped
            done = True
        out.write(chunk)
        written += len(chunk)
    _pad(out, budget - written)
    out.write(tail)
    return record


def _whole_records(chunk: bytes, room: int, end: bytes, start: bytes) -> tuple[bytes, int]:
    """The last batch: its leading whole records (each ending with `end`) that fit in `room`
    bytes, and how many records (each beginning with `start`) were left out."""
    cut = chunk.rfind(end, 0, room + 1)
    kept = cut + len(end) if cut != -1 else 0
    return chunk[:kept], chunk.count(start, kept)


def _pad(out: BinaryIO, pad: int) -> None:
    while pad > 0:
        # Whitespace-only padding lines (at most 100 spaces each) before the close tag.
        line = b" " * min(pad - 1, 99) + b"\n" if pad > 1 else b"\n"
        out.write(line)
        pad -= len(line)


def generate(size_mb: float, path: str | os.PathLike, seed: int = DEFAULT_SEED,
             dense: bool = False) -> int:
    """Write the document to `path` (via a temporary name, renamed when complete)."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    write = generate_dense_to if dense else generate_to
    try:
        with open(tmp, "wb", buffering=4 * MB) as out:
            records = write(out, size_mb, seed)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size_mb", type=float, help="target size in MB (2**20 bytes)")
    parser.add_argument("out", help="output file ('-' for stdout)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--dense", action="store_true",
                        help="dense records: short elements and attributes (~30 bytes each)")
    args = parser.parse_args(argv)
    if args.out == "-":
        write = generate_dense_to if args.dense else generate_to
        records = write(sys.stdout.buffer, args.size_mb, args.seed)
    else:
        records = generate(args.size_mb, args.out, args.seed, args.dense)
    print(f"wrote {int(args.size_mb * MB)} bytes, {records} records", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
