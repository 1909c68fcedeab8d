"""Progress reporting and cancellation through the progress callback."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import converter

GAP_LIMIT = 1_000_000


def _document(target_bytes: int) -> bytes:
    parts = [b'<?xml version="1.0"?>\n<orders>\n']
    size = len(parts[0])
    i = 0
    while size < target_bytes:
        row = (
            b'  <order id="%d"><customer><name>N\xc3\xa4me %d</name></customer>'
            b'<price currency="EUR">%d.50</price><items><item sku="S%d"/><item sku="T%d"/>'
            b"</items><note>some note text &amp; more</note></order>\n" % (i, i, i, i, i)
        )
        parts.append(row)
        size += len(row)
        i += 1
    parts.append(b"</orders>\n")
    return b"".join(parts)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("progress") / "orders.xml"
    path.write_bytes(_document(3 * 1024 * 1024))
    return path


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))


def assert_regular_progress(calls: list[tuple[int, int]], size: int) -> None:
    assert calls, "progress was never reported"
    done_values = [done for done, _ in calls]
    assert done_values == sorted(done_values)
    gaps = [b - a for a, b in zip([0, *done_values], done_values, strict=False)]
    assert max(gaps) <= GAP_LIMIT, max(gaps)
    assert all(done <= total for done, total in calls)
    assert calls[-1] == (size, size)


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "yaml", "text"])
def test_progress_at_least_every_megabyte_and_done_equals_total(big_file: Path, fmt) -> None:
    size = big_file.stat().st_size
    assert size > 3_000_000
    recorder = Recorder()
    result = converter.convert(str(big_file), io.BytesIO(), fmt, None, recorder)
    assert_regular_progress(recorder.calls, size)
    assert {total for _, total in recorder.calls} == {size}  # a file's size is known upfront
    assert len(recorder.calls) >= 3
    assert result.bytes_in == size


def test_progress_for_a_seekable_stream(big_file: Path) -> None:
    data = big_file.read_bytes()
    recorder = Recorder()
    converter.convert(io.BytesIO(data), io.BytesIO(), "json", None, recorder)
    assert_regular_progress(recorder.calls, len(data))
    assert {total for _, total in recorder.calls} == {len(data)}


class Unseekable(io.RawIOBase):
    """A pipe-like stream: no fileno, no seek, no size."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_progress_for_a_stream_of_unknown_size(big_file: Path) -> None:
    data = big_file.read_bytes()
    recorder = Recorder()
    out = io.BytesIO()
    converter.convert(io.BufferedReader(Unseekable(data)), out, "json", None, recorder)
    assert_regular_progress(recorder.calls, len(data))
    assert len(json.loads(out.getvalue())["orders"]["order"]) > 1000


class Cancelled(Exception):
    pass


class CountingReader(io.RawIOBase):
    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 -- closed by close()
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._file.readinto(buffer)
        self.read_bytes += n
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "yaml", "text"])
def test_raising_callback_stops_the_conversion_promptly(big_file: Path, fmt: str) -> None:
    size = big_file.stat().st_size
    calls: list[tuple[int, int]] = []

    def cancel_after_first_megabyte(done: int, total: int) -> None:
        calls.append((done, total))
        if done >= 1_000_000:
            raise Cancelled("stop")

    reader = CountingReader(big_file)
    out = io.BytesIO()
    with pytest.raises(Cancelled):
        converter.convert(
            io.BufferedReader(reader, 64 * 1024), out, fmt, None, cancel_after_first_megabyte
        )
    reader.close()
    raised_at = calls[-1][0]
    assert raised_at < size // 2, "the raise came early in the document"
    # Nothing more was asked of the callback and little more was read after the raise.
    assert sum(1 for done, _ in calls if done >= 1_000_000) == 1
    assert reader.read_bytes <= raised_at + 1024 * 1024
    if fmt == "json":
        with pytest.raises(ValueError):
            json.loads(out.getvalue())


def test_raising_on_the_first_report_writes_no_complete_output(big_file: Path) -> None:
    def cancel(done: int, total: int) -> None:
        raise Cancelled(f"{done}/{total}")

    out = io.BytesIO()
    with pytest.raises(Cancelled) as caught:
        converter.convert(str(big_file), out, "json", None, cancel)
    done, total = map(int, str(caught.value).split("/"))
    assert done < total == big_file.stat().st_size
    if out.getvalue():
        with pytest.raises(ValueError):
            json.loads(out.getvalue())


def test_progress_on_a_small_document_reports_once_complete(tmp_path: Path) -> None:
    path = tmp_path / "small.xml"
    path.write_bytes(b"<r><a>1</a></r>")
    recorder = Recorder()
    converter.convert(path, io.BytesIO(), "json", None, recorder)
    assert recorder.calls == [(15, 15)]
