"""`xmlconv convert`, run as a user runs it (a subprocess of the installed script)."""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import select
import stat
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

import pytest

import converter
import converter.cli
from converter.exit_status import ExitStatus
from converter.options import Options
from optionspec import MAX_DEPTH_CEILING

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


def xmlconv(*args: str, stdin: bytes | None = None, cwd: Path | None = None, **kwargs):
    return subprocess.run(
        [str(XMLCONV), "convert", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        timeout=120,
        **kwargs,
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
    assert list(error) == ["code", "message", "details"]  # the API's shape
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
    assert error["details"]["line"] == 3 and isinstance(error["details"]["column"], int)
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
    assert error["details"]["line"] == 2
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.xml"]  # no temporary left


def test_conversion_error_from_standard_input() -> None:
    done = xmlconv("-", "--to", "jsonl", stdin=b"<r>" + b"<a>1</a>" * 1000 + b"<a>")
    assert done.returncode == 1
    assert done.stdout == b""
    error = assert_one_error_line(done.stderr, "XML_PARSE_ERROR")
    assert error["details"]["line"] == 1 and isinstance(error["details"]["column"], int)


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
    assert done.returncode == ExitStatus.USAGE == 2  # a bad argument, as argparse's are
    assert done.stdout == b""
    error = assert_one_error_line(done.stderr, "INVALID_OPTION")
    assert error["details"] == {"option": option}
    assert not target.exists()


def test_missing_input_file(tmp_path: Path) -> None:
    done = xmlconv(str(tmp_path / "nope.xml"), "--to", "json")
    assert done.returncode == ExitStatus.FILE_ERROR == 6  # as `xmlconv submit` (test_client.py)
    assert done.stdout == b""
    error = assert_one_error_line(done.stderr, "INPUT_NOT_FOUND")
    assert error["message"] == f"no such file: {tmp_path / 'nope.xml'}"


def test_an_output_that_cannot_be_written(doc_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "o.json"
    done = xmlconv(str(doc_file), "-o", str(target), "--to", "json")
    assert done.returncode == ExitStatus.FILE_ERROR
    assert done.stdout == b""
    error = assert_one_error_line(done.stderr, "IO_ERROR")
    assert error["message"] == f"{target}: No such file or directory"  # the output, by name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.xml"]


def test_usage_names_the_command_that_was_run() -> None:
    done = xmlconv("--help")
    assert done.stdout.decode().startswith("usage: xmlconv convert input --to ")
    done = subprocess.run([sys.executable, "-m", "converter.cli", "convert", "--to", "json"],
                          capture_output=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.decode().startswith("usage: python -m converter.cli convert input ")


# ------------------------------------------------------------------------------ --help


def _convert_parser():
    (commands,) = [a for a in converter.cli._parser()._actions
                   if isinstance(a, argparse._SubParsersAction)]
    return commands.choices["convert"]


def test_every_option_has_a_description_and_its_default() -> None:
    actions = [a for a in _convert_parser()._actions if a.dest != "help"]
    assert {a.dest for a in actions} >= set(converter.OPTION_NAMES) | {"input", "output"}
    for action in actions:
        assert action.help and len(action.help) > 10, action
        if action.option_strings and not action.required:
            assert "(default: " in action.help, action.option_strings


def test_help_shows_the_librarys_defaults() -> None:
    done = xmlconv("--help")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.decode().split())  # argparse wraps lines
    defaults = Options()
    for flag, shown in [
        ("--namespaces", defaults.namespaces),
        ("--attr-prefix", repr(defaults.attr_prefix)),
        ("--text-key", repr(defaults.text_key)),
        ("--types", defaults.types),
        ("--max-depth", str(defaults.max_depth)),
        ("--force-list", "none"),
        ("--indent", "compact"),
        ("--separator", "newline"),
        ("--keep-whitespace", "text stripped"),
        ("--include-attributes", "not included"),
        ("--output", "standard output"),
        ("--record-path", "the most repeated element"),
    ]:
        assert flag in text
        help_of_flag = text[text.index(flag):]
        assert help_of_flag.split("(default: ", 1)[1].startswith(shown), (flag, shown)
    assert f"1-{MAX_DEPTH_CEILING}" in text
    assert "--force-list item,tag or --force-list item --force-list tag" in text


# ------------------------------------------------------------------------------ --version


def test_version() -> None:
    expected = f"its-convert-xml {metadata.version('its-convert-xml')}\n"
    assert expected.startswith("its-convert-xml 0.")
    done = subprocess.run([sys.executable, "-m", "converter.cli", "--version"],
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == expected


def test_version_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        converter.cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"its-convert-xml {metadata.version('its-convert-xml')}\n"


# ------------------------------------------------------------------------------ --force-list

FORCED = {"force_list": ["name", "flag"]}


@pytest.mark.parametrize(
    "args",
    [
        ["--force-list", "name,flag", "{doc}", "--to", "json"],
        ["--force-list", "name", "--force-list", "flag", "{doc}", "--to", "json"],
        ["--to", "json", "--force-list", "name", "--force-list", "flag", "{doc}"],
        ["--force-list", "name,", "--force-list", " flag", "{doc}", "--to", "json"],
        ["--force-list", "name", "flag", "{doc}", "--to", "json"],  # the old form, input last
        ["{doc}", "--to", "json", "--force-list", "name", "flag"],  # the old form
        ["--force-list=name,flag", "{doc}", "--to", "json"],
        ["--force-list", "name", "{doc}", "--force-list", "flag", "--to", "json"],
    ],
    ids=["comma", "repeated", "repeated-last", "spaces-and-empties", "old-form-input-last",
         "old-form", "equals", "input-between"],
)
def test_force_list_forms(doc_file: Path, args: list[str]) -> None:
    done = xmlconv(*[str(doc_file) if arg == "{doc}" else arg for arg in args])
    assert done.returncode == 0, done.stderr
    assert done.stdout == library(DOC, "json", FORCED)
    assert done.stdout != library(DOC, "json")


def test_force_list_before_the_input_does_not_swallow_it(doc_file: Path) -> None:
    """Issue 10: `xmlconv convert --force-list item orders.xml` said "input required"."""
    for args in (["--force-list", "tag", "orders.xml", "--to", "json"],
                 ["--to", "json", "--force-list", "tag", "orders.xml"]):
        done = xmlconv(*args, cwd=doc_file.parent)
        assert done.returncode == 0, done.stderr
        assert done.stdout == library(DOC, "json", {"force_list": ["tag"]})
        assert done.stdout != library(DOC, "json")


def test_force_list_before_standard_input() -> None:
    done = xmlconv("--force-list", "name", "-", "--to", "json", stdin=DOC)
    assert done.returncode == 0, done.stderr
    assert done.stdout == library(DOC, "json", {"force_list": ["name"]})


@pytest.mark.parametrize(
    ("argv", "force_list", "input_"),
    [
        (["--force-list", "a", "x.xml"], ["a"], "x.xml"),
        (["--force-list", "a", "b", "x.xml"], ["a", "b"], "x.xml"),
        (["x.xml", "--force-list", "a", "b"], ["a", "b"], "x.xml"),
        (["--force-list", "a,b", "--force-list", "c", "x.xml"], ["a", "b", "c"], "x.xml"),
        (["--force-list", "a", "-"], ["a"], "-"),
        (["x.xml"], None, "x.xml"),
    ],
)
def test_force_list_parsing(argv: list[str], force_list: list[str] | None, input_: str) -> None:
    args = converter.cli._parser().parse_args(["convert", "--to", "json", *argv])
    assert args.force_list == force_list
    assert args.input == input_
    assert not any(name.startswith("_") for name in vars(args))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "json"], "the following arguments are required: input"),
        (["--force-list", "a", "--to", "json"], "the following arguments are required: input"),
        (["--force-list", "a", "b", "--to", "json", "--force-list", "c", "x.xml"], "ambiguous"),
    ],
    ids=["no-input", "one-name-no-input", "ambiguous"],
)
def test_missing_input_is_a_usage_error(args: list[str], message: str) -> None:
    done = xmlconv(*args)
    assert done.returncode == 2
    assert done.stdout == b""
    assert message in done.stderr.decode()


# ------------------------------------------------------------------------------ file mode


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_output_file_mode_follows_the_umask(doc_file: Path, tmp_path: Path, umask: int,
                                            mode: int) -> None:
    target = tmp_path / "o.json"
    done = xmlconv(str(doc_file), "-o", str(target), "--to", "json", umask=umask)
    assert done.returncode == 0, done.stderr
    assert target.stat().st_mode & 0o7777 == mode
    assert target.read_bytes() == library(DOC, "json")


def test_output_file_replaces_an_existing_one(doc_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "o.json"
    target.write_bytes(b"old")
    done = xmlconv(str(doc_file), "-o", str(target), "--to", "json", umask=0o022)
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == library(DOC, "json")
    assert target.stat().st_mode & 0o7777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.json", "orders.xml"]


def test_output_to_a_fifo_writes_through_it(doc_file: Path, tmp_path: Path) -> None:
    """Not a regular file (a FIFO here; /dev/null alike): written to, not replaced by a file
    renamed onto it (as root, `-o /dev/null` once turned /dev/null into a regular file)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    done = xmlconv(str(doc_file), "-o", str(fifo), "--to", "json")
    reader.join(30)
    assert done.returncode == 0, done.stderr
    assert received == [library(DOC, "json")]
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.xml", "pipe"]  # no temp left


def test_output_to_dev_stdout_reaches_the_pipe(doc_file: Path) -> None:
    """/dev/stdout is a symbolic link to a pipe here (the test's capture): written through."""
    done = xmlconv(str(doc_file), "-o", "/dev/stdout", "--to", "json")
    assert done.returncode == 0, done.stderr
    assert done.stdout == library(DOC, "json")


def test_output_through_a_symbolic_link_replaces_its_target(doc_file: Path,
                                                            tmp_path: Path) -> None:
    target = tmp_path / "results" / "o.json"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    done = xmlconv(str(doc_file), "-o", str(link), "--to", "json")
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and target.read_bytes() == library(DOC, "json")


# ------------------------------------------------------------------------------ -o -


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "yaml", "text"])
def test_dash_output_is_standard_output(doc_file: Path, fmt: str) -> None:
    done = xmlconv(str(doc_file), "-o", "-", "--to", fmt, cwd=doc_file.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout == library(DOC, fmt)
    assert done.stdout == xmlconv(str(doc_file), "--to", fmt).stdout  # as without -o
    if fmt in ("jsonl", "csv"):
        assert json.loads(done.stderr) == {"record_path": "orders/order", "records": 3}
    else:
        assert done.stderr == b""
    assert [p.name for p in doc_file.parent.iterdir()] == ["orders.xml"]  # no file "-"


def test_dash_output_error_exits_1_with_one_error_line(tmp_path: Path) -> None:
    # -o - cannot be atomic: what was converted before the fault is already out.
    doc = b"<rows>" + b"<row><v>1</v></row>" * 50_000 + b"\n<row><v>2</row></rows>"
    path = tmp_path / "bad.xml"
    path.write_bytes(doc)
    done = xmlconv(str(path), "-o", "-", "--to", "json", cwd=tmp_path)
    assert done.returncode == 1
    error = assert_one_error_line(done.stderr, "XML_PARSE_ERROR")
    assert error["details"]["line"] == 2
    assert done.stdout.startswith(b'{"rows":{"row":[{"v":"1"}')  # partial, as documented
    assert [p.name for p in tmp_path.iterdir()] == ["bad.xml"]


def _load_bench_generator():
    spec = importlib.util.spec_from_file_location(
        "bench_generate", Path(__file__).resolve().parents[2] / "bench" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def big_doc(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("big") / "orders.xml"
    _load_bench_generator().generate(5, path)
    return path.read_bytes()


def _read(fd: int, size: int, timeout: float) -> bytes:
    """Up to `size` bytes from a pipe, giving up after `timeout` seconds."""
    got = bytearray()
    deadline = time.monotonic() + timeout
    while len(got) < size:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        data = os.read(fd, min(size - len(got), 1 << 20))
        if not data:
            break
        got += data
    return bytes(got)


def test_dash_output_streams_as_it_converts(big_doc: bytes, tmp_path: Path) -> None:
    """With -o -, output comes out while the input is still coming in: the first 3 of 5 MB
    go in, standard input stays open, and the first 64 KiB of the result must arrive
    before the rest of the input is sent. (Buffered, nothing could come out before the
    input's end: deterministic, no timing involved beyond a generous give-up deadline.)"""
    assert len(big_doc) == 5 << 20
    head, tail = big_doc[: 3 << 20], big_doc[3 << 20:]
    proc = subprocess.Popen([str(XMLCONV), "convert", "-", "-o", "-", "--to", "json"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=tmp_path)
    send_the_rest = threading.Event()

    def feed() -> None:
        try:
            proc.stdin.write(head)
            proc.stdin.flush()
            send_the_rest.wait(120)
            proc.stdin.write(tail)
            proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        first = _read(proc.stdout.fileno(), 64 * 1024, timeout=60)
        assert len(first) == 64 * 1024, "no output while the input was still open"
        assert proc.poll() is None  # still running: it has not seen the input's end
        assert not send_the_rest.is_set()
        send_the_rest.set()
        rest = _read(proc.stdout.fileno(), 1 << 30, timeout=120)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        send_the_rest.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        feeder.join(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert first + rest == library(big_doc, "json")
    assert list(tmp_path.iterdir()) == []  # no file "-", no temporary


def test_dash_output_of_a_file_streams(big_doc: bytes, tmp_path: Path) -> None:
    """A file input through a pipe: the first 64 KiB arrive while the process still runs,
    and the whole result is right. (A smoke test: a buffered -o - would pass it too, as
    a pipe holds 64 KiB of several MB; test_dash_output_streams_as_it_converts is the
    one that tells streaming from buffering.)"""
    path = tmp_path / "orders.xml"
    path.write_bytes(big_doc)
    proc = subprocess.Popen([str(XMLCONV), "convert", str(path), "-o", "-", "--to", "jsonl",
                             "--record-path", "orders/order"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        first = _read(proc.stdout.fileno(), 64 * 1024, timeout=60)
        assert len(first) == 64 * 1024
        assert proc.poll() is None
        rest = _read(proc.stdout.fileno(), 1 << 30, timeout=120)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
        summary = json.loads(proc.stderr.read())
        assert summary == {"record_path": "orders/order", "records": (first + rest).count(b"\n")}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert first + rest == library(big_doc, "jsonl", {"record_path": "orders/order"})
    assert [p.name for p in tmp_path.iterdir()] == ["orders.xml"]

