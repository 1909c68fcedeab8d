"""api/paced_socket.py on a real socket pair: a reader slower than the floor is cut within two
windows of waiting; one above it, or one that pauses the writer (not the reader), is not."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from api.paced_socket import PacedSocket, ReadTooSlowly

WINDOW = 0.4  # seconds
MIN_RATE = 256 * 1024  # bytes/s: 100 KiB per window


def pair() -> tuple[socket.socket, socket.socket]:
    writer, reader = socket.socketpair()
    for sock, option in ((writer, socket.SO_SNDBUF), (reader, socket.SO_RCVBUF)):
        sock.setsockopt(socket.SOL_SOCKET, option, 4096)
    return writer, reader


def read_at(reader: socket.socket, rate: float, stop: threading.Event) -> None:
    """Read `rate` bytes a second on average, in small sips, until `stop` or EOF."""
    started, got = time.monotonic(), 0
    while not stop.is_set():
        ahead = got / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(min(ahead, 0.05))
            continue
        try:
            data = reader.recv(max(1, int(rate / 20)))
        except OSError:
            return
        if not data:
            return
        got += len(data)


def send_all(paced: PacedSocket, data: bytes, how: str, tmp_path) -> None:
    """sendall, or sendfile of a file holding `data` (os.sendfile, its own way of waiting)."""
    if how == "sendall":
        paced.sendall(data)
        return
    source = tmp_path / "result"
    source.write_bytes(data)
    with source.open("rb") as handle:
        assert paced.sendfile(handle) == len(data)


@pytest.mark.parametrize("how", ["sendall", "sendfile"])
@pytest.mark.parametrize("rate, cut", [(20 * 1024, True), (4 * MIN_RATE, False)])
def test_a_reader_under_the_floor_is_cut_within_two_windows(rate, cut, how, tmp_path):
    writer, reader = pair()
    stop = threading.Event()
    thread = threading.Thread(target=read_at, args=(reader, rate, stop), daemon=True)
    thread.start()
    paced = PacedSocket(writer, MIN_RATE, WINDOW, idle_timeout=5)
    started = time.monotonic()
    try:
        if cut:
            with pytest.raises(ReadTooSlowly) as slow:
                send_all(paced, b"x" * (4 * 1024 * 1024), how, tmp_path)
            assert time.monotonic() - started <= 2 * WINDOW + 0.3
            assert slow.value.sent < MIN_RATE * WINDOW
            assert isinstance(slow.value, TimeoutError)
        else:  # 512 KiB at 1 MiB/s: half a second, over a window, never cut
            send_all(paced, b"x" * (512 * 1024), how, tmp_path)
        assert writer.gettimeout() == 5  # the idle timeout again for whatever comes next
    finally:
        stop.set()
        writer.close()
        reader.close()
        thread.join(5)


@pytest.mark.parametrize("how", ["sendall", "sendfile"])
def test_a_reader_that_takes_nothing_meets_the_idle_timeout_not_the_floor(how, tmp_path):
    writer, reader = pair()
    try:
        paced = PacedSocket(writer, MIN_RATE, 1.0, idle_timeout=0.5)  # window capped by idle
        with pytest.raises(TimeoutError) as idle:
            send_all(paced, b"x" * (1024 * 1024), how, tmp_path)
        assert not isinstance(idle.value, ReadTooSlowly)
    finally:
        writer.close()
        reader.close()


def test_sendfile_sends_the_part_asked_for(tmp_path):
    source = tmp_path / "result"
    source.write_bytes(bytes(range(256)) * 1000)
    writer, reader = socket.socketpair()
    with writer, reader, source.open("rb") as handle:
        paced = PacedSocket(writer, MIN_RATE, WINDOW, idle_timeout=5)
        received = bytearray()
        thread = threading.Thread(target=lambda: [received.extend(c) for c in iter(
            lambda: reader.recv(65536), b"")], daemon=True)
        thread.start()
        assert paced.sendfile(handle, offset=1000, count=200_000) == 200_000
        assert handle.tell() == 201_000
        writer.shutdown(socket.SHUT_WR)
        thread.join(5)
    assert bytes(received) == source.read_bytes()[1000:201_000]


def test_a_slow_reader_behind_a_large_buffer_is_cut_by_the_floor(tmp_path):
    """os.sendfile may put more than a window's bytes into the socket's buffer at once (which
    starts a new window); the wait that follows still counts against the floor: the slow reader
    is cut as too slow, not as idle."""
    writer, reader = socket.socketpair()
    writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1024 * 1024)
    stop = threading.Event()
    thread = threading.Thread(target=read_at, args=(reader, 20 * 1024, stop), daemon=True)
    thread.start()
    paced = PacedSocket(writer, MIN_RATE, WINDOW, idle_timeout=WINDOW)
    try:
        with pytest.raises(ReadTooSlowly):
            send_all(paced, b"x" * (8 * 1024 * 1024), "sendfile", tmp_path)
    finally:
        stop.set()
        writer.close()
        reader.close()
        thread.join(5)
