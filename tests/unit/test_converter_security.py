"""Hostile documents: each is refused with its code (or, for an external DTD reference,
converted without fetching anything), in bounded memory, without reading a local file
or opening a connection.

Memory is measured in a fresh interpreter per attack (its peak RSS after the conversion
minus its peak before it), so earlier tests cannot hide a spike. No time bound is
asserted.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import converter
from converter import ConversionError

REPO = Path(__file__).resolve().parents[2]
FORMATS = ("json", "yaml", "jsonl", "csv", "text")
MEMORY_BUDGET = 100 * 1024 * 1024

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz><a>&lol9;</a><b>&lol9;</b></lolz>
"""

# One 100 KB entity referenced 10000 times: 1 GB once expanded.
QUADRATIC = (
    b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY a "'
    + b"x" * 100_000
    + b'">]>\n<r>'
    + b"&a;" * 10_000
    + b"</r>"
)

EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?>\n'
    b'<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b"<r><a>&xxe;</a></r>"
)

EXTERNAL_PARAMETER_ENTITY = (
    b'<?xml version="1.0"?>\n'
    b'<!DOCTYPE r [<!ENTITY % ext SYSTEM "file:///etc/passwd"> %ext;]>\n'
    b"<r>x</r>"
)

DEEP = b"<a>" * 100_000 + b"</a>" * 100_000


def _passwd_fragments() -> list[bytes]:
    try:
        lines = Path("/etc/passwd").read_bytes().splitlines()
    except OSError:
        lines = []
    return [line for line in lines if len(line) > 8][:5] or [b"root:x:0:0"]


def convert_in_fresh_process(doc: bytes, fmt: str, tmp_path: Path, options=None) -> dict:
    """Convert in a new interpreter; its peak RSS growth during the conversion, the
    error code (or None), and the output's first bytes."""
    source = tmp_path / "attack.xml"
    source.write_bytes(doc)
    script = r"""
import io, json, resource, sys
import converter
class Sink(io.RawIOBase):
    def __init__(self): self.head = b""; self.size = 0
    def writable(self): return True
    def write(self, data):
        if len(self.head) < 4096: self.head += bytes(data[:4096])
        self.size += len(data); return len(data)
def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
converter.convert(io.BytesIO(b"<warm><up/></warm>"), io.BytesIO(), sys.argv[2])
before = peak()
sink = Sink()
code = message = None
try:
    converter.convert(sys.argv[1], sink, sys.argv[2], json.loads(sys.argv[3]))
except converter.ConversionError as error:
    code, message = error.code, error.message
print(json.dumps({"growth": peak() - before, "code": code, "message": message,
                  "head": sink.head.decode("utf-8", "replace"), "size": sink.size}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(source), fmt, json.dumps(options or {})],
        capture_output=True,
        cwd=REPO,
        timeout=300,  # a hang guard only: no time bound is asserted
    )
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


@pytest.mark.parametrize("fmt", ["json", "text"])
@pytest.mark.parametrize(
    ("name", "doc", "code"),
    [
        ("billion_laughs", BILLION_LAUGHS, "XML_SECURITY_VIOLATION"),
        ("quadratic_blowup", QUADRATIC, "XML_SECURITY_VIOLATION"),
        ("external_entity", EXTERNAL_ENTITY, "XML_SECURITY_VIOLATION"),
        ("external_parameter_entity", EXTERNAL_PARAMETER_ENTITY, "XML_SECURITY_VIOLATION"),
        ("deep_nesting", DEEP, "DEPTH_LIMIT_EXCEEDED"),
    ],
)
def test_attack_refused_in_bounded_memory(tmp_path, name, doc, code, fmt) -> None:
    report = convert_in_fresh_process(doc, fmt, tmp_path)
    assert report["code"] == code, report
    assert report["growth"] < MEMORY_BUDGET, report
    assert report["size"] < 1 << 20  # nothing was expanded into the output


ENTITY_DOCS = {
    "billion_laughs": BILLION_LAUGHS,
    "quadratic_blowup": QUADRATIC,
    "external_entity": EXTERNAL_ENTITY,
    "external_parameter_entity": EXTERNAL_PARAMETER_ENTITY,
    "internal_entity_used": b'<!DOCTYPE r [<!ENTITY e "hi">]><r>&e;</r>',
    "internal_entity_unused": b'<!DOCTYPE r [<!ENTITY e "hi">]><r>x</r>',
    "internal_parameter_entity": b'<!DOCTYPE r [<!ENTITY % p "<!ELEMENT r ANY>"> %p;]><r/>',
    "external_entity_public": (
        b'<!DOCTYPE r [<!ENTITY e PUBLIC "-//X//Y" "http://127.0.0.1:9/e.txt">]><r>&e;</r>'
    ),
    "unparsed_entity": (
        b'<!DOCTYPE r [<!NOTATION gif SYSTEM "image/gif">'
        b'<!ENTITY pic SYSTEM "file:///etc/passwd" NDATA gif>]><r/>'
    ),
    "entity_in_attribute": b'<!DOCTYPE r [<!ENTITY e "v">]><r a="&e;"/>',
}


@pytest.mark.parametrize("chunk_size", [None, 7])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(ENTITY_DOCS))
def test_entity_declarations_are_refused(fail, name: str, fmt: str, chunk_size) -> None:
    error, out = fail(ENTITY_DOCS[name], fmt, chunk_size=chunk_size)
    assert error.code == "XML_SECURITY_VIOLATION", (error.code, error.message)
    for fragment in _passwd_fragments():
        assert fragment not in out
        assert fragment.decode("utf-8", "replace") not in error.message
    assert b"lollol" not in out and b"xxxxxxxx" not in out


def test_external_entity_file_content_never_appears(fail) -> None:
    for fmt in FORMATS:
        error, out = fail(EXTERNAL_ENTITY, fmt)
        assert error.code == "XML_SECURITY_VIOLATION"
        assert b"root:" not in out and "root:" not in error.message
        for fragment in _passwd_fragments():
            assert fragment not in out


def test_xinclude_is_not_processed(run) -> None:
    doc = (
        b'<r xmlns:xi="http://www.w3.org/2001/XInclude">'
        b'<xi:include href="file:///etc/passwd" parse="text"/></r>'
    )
    out = run(doc)
    assert json.loads(out) == {
        "r": {
            "@xmlns:xi": "http://www.w3.org/2001/XInclude",
            "xi:include": {"@href": "file:///etc/passwd", "@parse": "text"},
        }
    }
    for fragment in _passwd_fragments():
        assert fragment not in out


# ---------------------------------------------------------------- nothing is fetched


class Listener:
    """A loopback TCP listener that records whether anybody connected."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def connections(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def test_listener_does_see_a_connection(listener) -> None:
    """The check below can fail: a real connection is seen."""
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5):
        time.sleep(0.05)
    assert listener.connections() == 1


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("chunk_size", [None, 7])
def test_external_dtd_is_not_fetched_and_document_converts(listener, run, fmt, chunk_size):
    urls = [
        f"http://127.0.0.1:{listener.port}/x.dtd",
        f"http://localhost:{listener.port}/y.dtd",
    ]
    for url in urls:
        doc = f'<!DOCTYPE a SYSTEM "{url}"><a><b>1</b><b>2</b></a>'.encode()
        out = run(doc, fmt, chunk_size=chunk_size)
        if fmt == "json":
            assert json.loads(out) == {"a": {"b": ["1", "2"]}}
        assert out
        doc = f'<!DOCTYPE a PUBLIC "-//X//DTD Y//EN" "{url}"><a><b>1</b></a>'.encode()
        assert run(doc, fmt, chunk_size=chunk_size)
    time.sleep(0.05)
    assert listener.connections() == 0


def test_external_dtd_on_port_9_is_accepted(run) -> None:
    doc = b'<!DOCTYPE a SYSTEM "http://127.0.0.1:9/x.dtd"><a><b>1</b></a>'
    assert json.loads(run(doc)) == {"a": {"b": "1"}}
    assert json.loads(run(doc, "jsonl")) == {"b": "1"}


def test_external_dtd_defaults_from_a_local_file_are_not_applied(tmp_path, run) -> None:
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ATTLIST a secret CDATA "SECRETVALUE">\n')
    doc = f'<!DOCTYPE a SYSTEM "{dtd.as_uri()}"><a><b>1</b></a>'.encode()
    out = run(doc)
    assert json.loads(out) == {"a": {"b": "1"}}
    assert b"SECRETVALUE" not in out


class FifoWatch:
    """A named pipe that records whether any process opened it for reading.

    Opening a FIFO's write end without blocking succeeds only while a reader has it
    open; the watcher then closes it at once, so a reader would just see an empty file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self.opened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.001)
                continue
            self.opened += 1
            os.close(fd)

    def stop(self) -> int:
        time.sleep(0.05)
        self._stop.set()
        self._thread.join(5)
        return self.opened


def test_fifo_watch_does_see_a_reader(tmp_path) -> None:
    watch = FifoWatch(tmp_path / "probe")
    with open(watch.path, "rb") as reader:  # blocks until the watcher opens the write end
        reader.read()
    assert watch.stop() >= 1


@pytest.mark.parametrize(
    "template",
    [
        '<!DOCTYPE r [<!ENTITY % ext SYSTEM "{uri}"> %ext;]><r>x</r>',
        '<!DOCTYPE r [<!ENTITY ext SYSTEM "{uri}">]><r>&ext;</r>',
        '<!DOCTYPE r SYSTEM "{uri}"><r>x</r>',
        '<!DOCTYPE r PUBLIC "-//X//Y" "{uri}"><r>&undeclared;</r>',
    ],
    ids=["parameter-entity", "general-entity", "external-dtd", "external-dtd-with-reference"],
)
def test_no_local_file_is_opened(tmp_path, template: str) -> None:
    watch = FifoWatch(tmp_path / "pipe.dtd")
    doc = template.format(uri=watch.path.as_uri()).encode()
    try:
        for fmt in ("json", "text"):
            try:
                converter.convert(io.BytesIO(doc), io.BytesIO(), fmt)
            except ConversionError as error:
                assert error.code in ("XML_SECURITY_VIOLATION", "XML_PARSE_ERROR")
    finally:
        opened = watch.stop()
    assert opened == 0, f"the engine opened {watch.path}"


# ------------------------------------------------------------------------------ depth


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("levels", "max_depth"), [(1001, None), (5000, None), (11, 10)])
def test_nesting_deeper_than_max_depth_is_refused(fail, fmt, levels, max_depth) -> None:
    doc = b"<a>" * levels + b"x" + b"</a>" * levels
    options = {} if max_depth is None else {"max_depth": max_depth}
    error, out = fail(doc, fmt, options)
    assert error.code == "DEPTH_LIMIT_EXCEEDED", (error.code, error.message)
    # The message names the limit the user has (not libxml2's own ceiling).
    assert str(max_depth or 1000) in error.message, error.message
    assert "XML_PARSE_HUGE" not in error.message
    if fmt == "json" and out:
        with pytest.raises(ValueError):
            json.loads(out)
