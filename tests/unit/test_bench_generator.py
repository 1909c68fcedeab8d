"""The benchmark generator: well-formed, exact size, the promised features, deterministic."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "bench" / "generate.py"
MB = 1 << 20
ORDERS = "urn:example:orders"
EXT = "urn:example:ext"


def _generate(path: Path, size_mb: str = "1", *extra: str) -> bytes:
    subprocess.run(
        [sys.executable, str(GENERATOR), size_mb, str(path), *extra],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path.read_bytes()


@pytest.fixture(scope="module")
def one_mb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _generate(tmp_path_factory.mktemp("gen") / "one.xml")


def test_exact_size(one_mb: bytes) -> None:
    assert len(one_mb) == MB


def test_well_formed_with_namespaces(one_mb: bytes) -> None:
    root = etree.fromstring(one_mb)
    assert root.tag == f"{{{ORDERS}}}orders"
    assert root.nsmap == {None: ORDERS, "x": EXT}
    assert root.get("generated")
    orders = root.findall(f"{{{ORDERS}}}order")
    assert len(orders) > 1000
    assert [o.get("id") for o in orders[:3]] == ["1", "2", "3"]
    ids = [int(o.get("id")) for o in orders]
    assert ids == list(range(1, len(orders) + 1))
    for order in orders[:200]:
        assert order.get("status")
        customer = order.find(f"{{{ORDERS}}}customer")
        assert customer.find(f"{{{ORDERS}}}name").text
        assert "@" in customer.find(f"{{{ORDERS}}}email").text
        assert customer.find(f"{{{EXT}}}tier").text
        items = order.findall(f"{{{ORDERS}}}items/{{{ORDERS}}}item")
        assert items and all(i.get("sku") and i.get("qty") for i in items)
        price = order.find(f"{{{ORDERS}}}price")
        assert price.get("currency") and float(price.text) > 0
    # Records vary: some orders have several items, some one; some carry x:channel.
    counts = {len(o.findall(f"{{{ORDERS}}}items/{{{ORDERS}}}item")) for o in orders}
    assert 1 in counts and max(counts) >= 3
    assert any(o.get(f"{{{EXT}}}channel") for o in orders)


def test_has_cdata_escapes_non_ascii_and_comments(one_mb: bytes) -> None:
    assert b"<![CDATA[" in one_mb
    assert b"&amp;" in one_mb and b"&lt;" in one_mb
    text = one_mb.decode("utf-8")
    for ch in "éü中":
        assert ch in text
    assert "<!--" in text
    # Parsed values hold the unescaped characters.
    root = etree.fromstring(one_mb)
    values = [e.text or "" for e in root.iter(f"{{{ORDERS}}}name", f"{{{ORDERS}}}item")]
    assert any("&" in v for v in values)
    assert any("<" in (e.text or "") for e in root.iter(f"{{{ORDERS}}}note", f"{{{ORDERS}}}item"))
    assert any(isinstance(c, etree._Comment) for c in root)


def test_deterministic_and_seeded(tmp_path: Path, one_mb: bytes) -> None:
    again = _generate(tmp_path / "again.xml")
    assert hashlib.sha256(again).digest() == hashlib.sha256(one_mb).digest()
    other = _generate(tmp_path / "other.xml", "1", "--seed", "7")
    assert len(other) == MB and other != one_mb
    etree.fromstring(other)


def test_small_sizes_are_exact_and_well_formed(tmp_path: Path) -> None:
    for size in ("0.01", "0.25"):
        data = _generate(tmp_path / f"{size}.xml", size)
        assert len(data) == int(float(size) * MB)
        etree.fromstring(data)


def test_dense_records(tmp_path: Path) -> None:
    """--dense: exact size, namespace-well-formed, several attributes and prefixed names,
    20 to 32 bytes an element, the same bytes for the same seed."""
    data = _generate(tmp_path / "dense.xml", "1", "--dense")
    assert len(data) == MB
    assert _generate(tmp_path / "again.xml", "1", "--dense") == data
    root = etree.fromstring(data)
    assert root.nsmap == {None: "urn:example:feed", "g": "urn:example:geo",
                          "m": "urn:example:meta"}
    records = list(root)
    assert [r.get("id") for r in records[:3]] == ["1", "2", "3"]
    assert all(r.get("t") and r.get("v") for r in records)
    elements = sum(1 for _ in root.iter())
    assert 20 <= len(data) / elements <= 32
    assert root.find("{urn:example:geo}p", None) is None  # points are inside the records
    assert records[0].find("{urn:example:geo}p").get("lat")
    assert any(r.find("{urn:example:meta}k") is not None for r in records)
