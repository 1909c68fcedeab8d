"""A resolver the webhook tests control: no DNS server runs here, so socket.getaddrinfo is
replaced (monkeypatched) for the names of a table — and only for them: DNS is the one part
faked; every connection is real."""

from __future__ import annotations

import socket

import pytest


class FakeDns:
    """getaddrinfo over a table (name -> addresses, changed at will); records every name asked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []
        real = socket.getaddrinfo

        def getaddrinfo(host, port, *args, **kwargs):
            self.asked.append(host)
            if host not in self.table:
                return real(host, port, *args, **kwargs)  # literals (127.0.0.1)
            family = {4: socket.AF_INET, 6: socket.AF_INET6}
            return [(family[6 if ":" in a else 4], socket.SOCK_STREAM, 6, "",
                     (a, port) if ":" not in a else (a, port, 0, 0)) for a in self.table[host]]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
