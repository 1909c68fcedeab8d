"""`xmlconv convert`, run as a user runs it (a subprocess of the installed script)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import converter

XMLCONV = Path(sys.executable).with_name("xmlconv")

DOC = b"""<?xml version="1.0"?>
<orders xmlns:x="urn:x">
  <order id="1"><name>Ann, "A"</name><x:tier>gold</x:tier><qty>2</qty>
    <price currency="EUR">12.50</price><tag>a</tag><tag>b</tag></order>
  <order id="2"><name>  Bob  </name><qty>007</qty><price currency="USD">3</price>
    <tag>c</tag></order>
  <order id="3"><name>Cy</name><flag>true</flag></order>
</orders>
"""


def xmlconv(*args: str, stdin: bytes | None = None, cwd: Path | None = None):
    return subprocess.run(
        [str(XMLCONV), "convert", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        timeout=120,
    )


def library(doc: bytes, fmt: str, options: dict | None = None) -> bytes:
    out = io.BytesIO()
    converter.convert(io.BytesIO(doc), out, fmt, options or {})
    return out.getvalue()


@pytest.fixture
def doc_file(tmp_path: Path) -> Path:
    path = tmp_path / "orders.xml"
    path.write_bytes(DOC)
    return path


def test_the_script_is_installed() -> None:
    assert XMLCONV.is_file(), XMLCONV


def test_output_file(doc_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "orders.json"
    target.parent.mkdir()
    done = xmlconv(str(doc_file), "-o", str(target), "--to", "json")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b""
    assert target.read_bytes() == library(DOC, "json")
    assert sorted(p.name for p in target.parent.iterdir()) == ["orders.json"]  # no temp left


def test_long_output_option_and_relative_paths(doc_file: Path) -> None:
    done = xmlconv(doc_file.name, "--output", "o.yaml", "--to", "yaml", cwd=doc_file.parent)
    assert done.returncode == 0, done.stderr
    assert (doc_file.parent / "o.yaml").read_bytes() == library(DOC, "yaml")


@pytest.mark.parametrize("fmt", ["json", "yaml", "text"])
def test_standard_output(doc_file: Path, fmt: str) -> None:
    done = xmlconv(str(doc_file), "--to", fmt)
    assert done.returncode == 0, done.stderr
    assert done.stdout == library(DOC, fmt)
    assert done.stderr == b""  # no summary for whole-document formats


def test_standard_input() -> None:
    done = xmlconv("-", "--to", "json", stdin=DOC)
    assert done.returncode == 0, done.stderr
    assert done.stdout == library(DOC, "json")


def test_standard_input_to_output_file(tmp_path: Path) -> None:
    target = tmp_path / "o.csv"
    done = xmlconv("-", "-o", str(target), "--to", "csv", stdin=DOC)
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == library(DOC, "csv")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_record_formats_print_the_picked_record_path(doc_file: Path, fmt: str) -> None:
    done = xmlconv(str(doc_file), "--to", fmt)
    assert done.returncode == 0, done.stderr
    assert done.stdout == library(DOC, fmt)
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == {"record_path": "orders/order", "records": 3}


def test_explicit_record_path_summary(doc_file: Path) -> None:
    done = xmlconv(str(doc_file), "--to", "jsonl", "--record-path", "orders/order/tag")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == ["a", "b", "c"]
    assert json.loads(done.stderr) == {"record_path": "orders/order/tag", "records": 3}


# Each flag, and the library options it must mean.
FLAGS = [
    ("json", ["--namespaces", "strip"], {"namespaces": "strip"}),
    ("json", ["--namespaces", "expand"], {"namespaces": "expand"}),
    (
        "json",
        ["--attr-prefix", "_", "--text-key", "value"],
        {"attr_prefix": "_", "text_key": "value"},
    ),
    ("json", ["--force-list", "name", "flag"], {"force_list": ["name", "flag"]}),
    ("json", ["--types", "infer"], {"types": "infer"}),
    ("json", ["--indent", "4"], {"indent": 4}),
    ("json", ["--keep-whitespace"], {"strip_whitespace": False}),
    (
        "jsonl",
        ["--record-path", "orders/order", "--types", "infer"],
        {"record_path": "orders/order", "types": "infer"},
    ),
    ("csv", ["--record-path", "orders/order/price"], {"record_path": "orders/order/price"}),
    ("text", ["--separator", " | "], {"separator": " | "}),
    ("text", ["--include-attributes"], {"include_attributes": True}),
    (
        "yaml",
        ["--types", "infer", "--namespaces", "strip"],
        {"types": "infer", "namespaces": "strip"},
    ),
]


@pytest.mark.parametrize(("fmt", "flags", "options"), FLAGS, ids=[" ".join(f[1]) for f in FLAGS])
def test_every_option_flag(doc_file: Path, fmt: str, flags: list[str], options: dict) -> None:
    done = xmlconv(str(doc_file), "--to", fmt, *flags)
    assert done.returncode == 0, done.stderr
    expected = library(DOC, fmt, options)
    assert done.stdout == expected
    assert expected != library(DOC, fmt), "the option changes the output"


def test_max_depth_flag(doc_file: Path) -> None:
    done = xmlconv(str(doc_file), "--to", "json", "--max-depth", "3")  # orders/order/price
    assert done.returncode == 0, done.stderr
    assert done.stdout == library(DOC, "json", {"max_depth": 3})
    done = xmlconv(str(doc_file), "--to", "json", "--max-depth", "2")
    assert done.returncode == 1
    assert done.stdout == b""
    assert_one_error_line(done.stderr, "DEPTH_LIMIT_EXCEEDED")


# ------------------------------------------------------------------------------ errors


def assert_one_error_line(stderr: bytes, code: str) -> dict:
    lines = stderr.decode().splitlines()
    assert len(lines) == 1, stderr
    payload = json.loads(lines[0])
    assert list(payload) == ["error"]
    error = payload["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    return error


MALFORMED = b"<orders>\n  <order>\n  </orders>\n"


def test_conversion_error_to_stdout(tmp_path: Path) -> None:
    path = tmp_path / "bad.xml"
    path.write_bytes(MALFORMED)
    done = xmlconv(str(path), "--to", "json")
    assert done.returncode == 1
    assert done.stdout == b""
    error = assert_one_error_line(done.stderr, "XML_PARSE_ERROR")
    assert error["line"] == 3 and isinstance(error["column"], int)
    assert set(error) >= {"code", "message", "line", "column"}
    assert [p.name for p in tmp_path.iterdir()] == ["bad.xml"]


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "yaml", "text"])
def test_conversion_error_with_output_file_leaves_no_file(tmp_path: Path, fmt: str) -> None:
    # Enough good records before the fault that a partial result would be written.
    doc = b"<rows>" + b"<row><v>1</v></row>" * 50_000 + b"\n<row><v>2</row></rows>"
    path = tmp_path / "bad.xml"
    path.write_bytes(doc)
    target = tmp_path / f"out.{fmt}"
    done = xmlconv(str(path), "-o", str(target), "--to", fmt)
    assert done.returncode == 1
    assert done.stdout == b""
    error = assert_one_error_line(done.stderr, "XML_PARSE_ERROR")
    assert error["line"] == 2
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.xml"]  # no temporary left


def test_conversion_error_from_standard_input() -> None:
    done = xmlconv("-", "--to", "jsonl", stdin=b"<r>" + b"<a>1</a>" * 1000 + b"<a>")
    assert done.returncode == 1
    assert done.stdout == b""
    error = assert_one_error_line(done.stderr, "XML_PARSE_ERROR")
    assert error["line"] == 1 and isinstance(error["column"], int)


@pytest.mark.parametrize(
    ("stdin", "code"),
    [
        (b"", "EMPTY_INPUT"),
        (b"  \n ", "EMPTY_INPUT"),
        (b'{"json": true}', "NOT_XML"),
        (b"<r>\xff</r>", "ENCODING_ERROR"),
        (b'<!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>', "XML_SECURITY_VIOLATION"),
        (b"<a>" * 1001 + b"</a>" * 1001, "DEPTH_LIMIT_EXCEEDED"),
    ],
    ids=["empty", "whitespace", "json", "bad-utf8", "entity", "deep"],
)
def test_refused_inputs(stdin: bytes, code: str, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    done = xmlconv("-", "-o", str(target), "--to", "json", stdin=stdin)
    assert done.returncode == 1
    assert done.stdout == b""
    assert_one_error_line(done.stderr, code)
    assert not target.exists()


def test_record_not_found(doc_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "o.csv"
    done = xmlconv(str(doc_file), "-o", str(target), "--to", "csv", "--record-path", "orders/x")
    assert done.returncode == 1
    assert done.stdout == b""
    assert_one_error_line(done.stderr, "RECORD_NOT_FOUND")
    assert not target.exists()


@pytest.mark.parametrize(
    ("flags", "option"),
    [
        (["--indent", "9"], "indent"),
        (["--max-depth", "0"], "max_depth"),
        (["--record-path", "a//b"], "record_path"),
        (["--text-key", ""], "text_key"),
    ],
)
def test_invalid_option(doc_file: Path, tmp_path: Path, flags: list[str], option: str) -> None:
    target = tmp_path / "o.json"
    done = xmlconv(str(doc_file), "-o", str(target), "--to", "json", *flags)
    assert done.returncode == 1
    assert done.stdout == b""
    error = assert_one_error_line(done.stderr, "INVALID_OPTION")
    assert error["option"] == option
    assert not target.exists()


def test_missing_input_file(tmp_path: Path) -> None:
    done = xmlconv(str(tmp_path / "nope.xml"), "--to", "json")
    assert done.returncode == 1
    assert done.stdout == b""
    error = assert_one_error_line(done.stderr, "INPUT_NOT_FOUND")
    assert "nope.xml" in error["message"]
