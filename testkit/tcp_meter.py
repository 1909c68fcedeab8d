"""A TCP relay that counts the bytes a server receives: clients talk to the relay's port, which
forwards every byte both ways to the server and counts those going to it (`received`).

The kernel's per-process I/O counters (/proc/<pid>/io, psutil's io_counters) do not count
socket reads made with recv(2), which is how gunicorn's workers read request bodies, so the
bytes an API process received are counted on the wire instead.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from testkit.waiting import free_port

HOST = "127.0.0.1"


class TcpMeter:
    def __init__(self, target_port: int, target_host: str = HOST) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.received = 0  # bytes forwarded to the server
        self.sent = 0  # bytes forwarded from it
        self._lock = threading.Lock()
        self._listener = socket.create_server((HOST, self.port))
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="tcp-meter").start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False),
                             daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, inbound: bool) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                with self._lock:
                    if inbound:
                        self.received += len(data)
                    else:
                        self.sent += len(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def __enter__(self) -> TcpMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
