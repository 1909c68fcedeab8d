"""Requests the service sends out (webhooks, URL imports), each to an address that was checked,
within one deadline.

    connect(target, addresses, deadline) -> a socket to one of `addresses` (TLS for https):
                                            the fetch of an input_url (worker/fetch.py) speaks
                                            HTTP over it
    post(target, addresses, body, headers, seconds) -> the answer's status code, or NoAnswer:
                                            one webhook request

- **Pinned.** It connects to `addresses` (common/outbound_urls.py resolved and checked them) and
  never resolves the name again; `Host` is the URL's host, and for https the TLS handshake sends
  it as SNI and verifies the certificate against it, so the address is pinned and the name still
  authenticated.
- **One deadline.** Connecting, the TLS handshake, sending and the answer's status line and
  headers all share `seconds`: a receiver that answers one byte a second is cut off at the
  deadline, however steadily it trickles.
- **Nothing from the environment.** No proxy variable (`HTTP(S)_PROXY`, `NO_PROXY`), no
  `.netrc`, no redirect: this module reads none of them (it is not an HTTP client library; a
  fetch follows a redirect only after checking its target the same way).
- At most MAX_HEAD_BYTES of the answer (status line and headers) is read; its body never is.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from functools import cache

from common.outbound_urls import Address, Target

MAX_HEAD_BYTES = 64 * 1024  # of an answer's status line and headers
_STATUS = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9])(?: [^\r\n]*)?\r?\n")


class NoAnswer(Exception):  # noqa: N818 - an outcome, not a programming error
    """No usable answer. `reason` (logged): ConnectionError, TLSError, Timeout or BadAnswer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@cache
def default_tls() -> ssl.SSLContext:
    """Certificates verified against certifi's bundle when installed (as requests did), else
    the system's."""
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise NoAnswer("Timeout")
    return left


def _connect(addresses: Sequence[Address], port: int, deadline: float) -> socket.socket:
    """A connection to the first of `addresses` that accepts one, in their order."""
    for address in addresses:
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect((str(address), port))
        except TimeoutError:
            sock.close()
            raise NoAnswer("Timeout") from None
        except NoAnswer:
            sock.close()
            raise
        except OSError:
            sock.close()
            continue
        return sock
    raise NoAnswer("ConnectionError")


def _request_head(target: Target, body: bytes, headers: Mapping[str, str]) -> bytes:
    lines = [f"POST {target.path} HTTP/1.1", f"Host: {target.host_header}",
             f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _status(sock: socket.socket, deadline: float) -> int:
    """The final status code (1xx interim answers skipped), read within the deadline."""
    received = b""
    while True:
        end = received.find(b"\r\n\r\n")
        if end < 0:
            end = received.find(b"\n\n")
        if end >= 0:
            match = _STATUS.match(received)
            if match is None:
                raise NoAnswer("BadAnswer")
            code = int(match[1])
            if 100 <= code < 200 and code != 101:  # interim: the final answer follows
                received = received[end + (4 if received[end:end + 4] == b"\r\n\r\n" else 2):]
                continue
            return code
        if len(received) > MAX_HEAD_BYTES:
            raise NoAnswer("BadAnswer")
        sock.settimeout(_remaining(deadline))
        chunk = sock.recv(16384)
        if not chunk:
            raise NoAnswer("BadAnswer" if received else "ConnectionError")
        received += chunk


def connect(target: Target, addresses: Sequence[Address], deadline: float,
            tls: ssl.SSLContext | None = None) -> socket.socket:
    """A connection to `target` at the first of `addresses` that accepts one, with TLS (SNI and
    the certificate checked against the URL's host) for https, made before `deadline` (a
    time.monotonic() value); else NoAnswer (ConnectionError, Timeout, TLSError)."""
    sock = _connect(addresses, target.port, deadline)
    if target.scheme != "https":
        return sock
    try:
        sock.settimeout(_remaining(deadline))  # the handshake's total time (Python ≥ 3.5)
        return (tls or default_tls()).wrap_socket(sock, server_hostname=target.host)
    except TimeoutError:
        sock.close()
        raise NoAnswer("Timeout") from None
    except ssl.SSLError:  # a failed handshake or certificate check
        sock.close()
        raise NoAnswer("TLSError") from None
    except OSError:
        sock.close()
        raise NoAnswer("ConnectionError") from None
    except NoAnswer:
        sock.close()
        raise


def post(target: Target, addresses: Sequence[Address], body: bytes,
         headers: Mapping[str, str], seconds: float,
         tls: ssl.SSLContext | None = None) -> int:
    """POST `body` to `target` at one of `addresses`; the status code of the answer, or
    NoAnswer when there is none within `seconds` from now (connect, send and answer in total)."""
    deadline = time.monotonic() + seconds
    sock = connect(target, addresses, deadline, tls)
    try:
        sock.settimeout(_remaining(deadline))  # sendall: the total time of the whole send
        sock.sendall(_request_head(target, body, headers) + body)
        return _status(sock, deadline)
    except TimeoutError:
        raise NoAnswer("Timeout") from None
    except ssl.SSLError:
        raise NoAnswer("TLSError") from None
    except OSError:
        raise NoAnswer("ConnectionError") from None
    finally:
        sock.close()
