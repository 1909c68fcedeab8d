"""Which webhook URLs the service will call: no server-side request forgery.

A URL must be http or https, carry no credentials, and its host must be — and resolve only to —
public addresses: never loopback, private, link-local, multicast, reserved or otherwise not
globally routable (cloud metadata at 169.254.169.254 included). The API checks at submission
(400 INVALID_WEBHOOK_URL) and the worker again before each delivery, because DNS can change.
WEBHOOK_ALLOW_PRIVATE=true (development and tests; refused in production) lifts the address rule.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from . import errors
from .errors import ServiceError

MAX_URL_LENGTH = 2048


def _refused(reason: str) -> ServiceError:
    return ServiceError(errors.INVALID_WEBHOOK_URL, f"webhook_url is refused: {reason}",
                        {"parameter": "webhook_url"}, status=400)


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise _refused(f"its host {host!r} does not resolve") from None
    found = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        found.append(address)
    return found


def check_url(url: str, allow_private: bool) -> str:
    """The URL if the service may call it, else ServiceError 400 INVALID_WEBHOOK_URL."""
    if len(url) > MAX_URL_LENGTH:
        raise _refused(f"longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _refused("not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refused("it must be an http or https URL with a host")
    if parts.username or parts.password:
        raise _refused("it must not carry credentials")
    if allow_private:
        return url
    for address in _addresses(parts.hostname, port):
        if not address.is_global or address.is_multicast:
            raise _refused("its host is or resolves to a non-public address")
    return url
