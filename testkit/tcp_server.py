"""A TCP server on 127.0.0.1 for the tests' scripted peers (an import's origin, webhook
receivers): each connection handled in a thread of its own by the subclass's `handle`."""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpServer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept(): the port is closed at once
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()


def read_head(conn: socket.socket) -> bytes:
    """What arrives up to and including the end of a request's head (b"" if the peer left
    first); a body's first bytes may follow it."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        received += chunk
    return received
