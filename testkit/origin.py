"""An HTTP origin on 127.0.0.1 for URL imports (input_url): a real TCP server whose paths answer
as a test scripts them — a file (with a Content-Length, chunked, or ended by closing), a status,
a redirect, a trickle, silence — and that records each request's head.

    with Origin() as origin:
        url = origin.route("/orders.xml", Origin.file(data))
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable

from testkit.tcp_server import TcpServer, read_head

Answer = Callable[[socket.socket], None]


class Origin(TcpServer):
    def __init__(self) -> None:
        self.routes: dict[str, Answer] = {}
        self.requests: list[bytes] = []
        super().__init__()
        self.base = f"http://127.0.0.1:{self.port}"

    def route(self, path: str, answer: Answer) -> str:
        """Serve `path` with `answer`; its URL."""
        self.routes[path.partition("?")[0]] = answer
        return self.base + path

    def heads(self, path: str) -> list[bytes]:
        with self.lock:
            return [head for head in self.requests if head.split(b" ")[1].startswith(
                path.encode())]

    def handle(self, conn: socket.socket) -> None:
        with conn:
            head = read_head(conn)
            if not head:
                return
            with self.lock:
                self.requests.append(head)
            path = head.split(b" ")[1].decode().partition("?")[0]
            answer = self.routes.get(path, Origin.status(404))
            with contextlib.suppress(OSError):  # the client went away (a fetch gave up)
                answer(conn)

    # -- answers

    @staticmethod
    def file(data: bytes, *, framing: str = "length", content_type: str = "application/xml",
             extra: str = "") -> Answer:
        """`data` as a 200: framing "length" (Content-Length), "chunked", or "close" (neither:
        the body ends when the connection does)."""
        def answer(conn: socket.socket) -> None:
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n{extra}"
            if framing == "length":
                conn.sendall(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
            elif framing == "chunked":
                conn.sendall(f"{head}Transfer-Encoding: chunked\r\n\r\n".encode())
                for start in range(0, len(data), 7919):
                    piece = data[start:start + 7919]
                    conn.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                conn.sendall(b"0\r\n\r\n")
            else:
                conn.sendall(f"{head}Connection: close\r\n\r\n".encode() + data)
        return answer

    @staticmethod
    def status(code: int) -> Answer:
        def answer(conn: socket.socket) -> None:
            conn.sendall(f"HTTP/1.1 {code} Status\r\nContent-Length: 0\r\n\r\n".encode())
        return answer

    @staticmethod
    def redirect(location: str, code: int = 302) -> Answer:
        def answer(conn: socket.socket) -> None:
            conn.sendall(f"HTTP/1.1 {code} Moved\r\nLocation: {location}\r\n"
                         "Content-Length: 0\r\n\r\n".encode())
        return answer

    @staticmethod
    def trickle(data: bytes, bytes_per_second: float, *, announce: int | None = None) -> Answer:
        """A 200 whose body (Content-Length `announce`, or len(data)) comes a few bytes at a
        time at `bytes_per_second`."""
        def answer(conn: socket.socket) -> None:
            length = len(data) if announce is None else announce
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n".encode())
            step = max(1, int(bytes_per_second / 10))
            for start in range(0, len(data), step):
                conn.sendall(data[start:start + step])
                time.sleep(0.1)
        return answer

    @staticmethod
    def endless(chunk: bytes = b"<a>" * 21845) -> Answer:
        """A 200 without a length whose body never ends (as fast as the reader takes it)."""
        def answer(conn: socket.socket) -> None:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n\r\n")
            while True:
                conn.sendall(chunk)
        return answer

    @staticmethod
    def silent(seconds: float = 60) -> Answer:
        """Takes the request and answers nothing."""
        def answer(conn: socket.socket) -> None:
            time.sleep(seconds)
        return answer
