"""Which URLs the service will call, and where exactly: no server-side request forgery. Two kinds
of URL a client gives go out from the service: a job's `webhook_url` (worker/webhooks.py) and its
`input_url` (worker/fetch.py); both are read by the rules below, and a refusal names its
parameter with its own code (INVALID_WEBHOOK_URL, INVALID_INPUT_URL).

A URL must be http or https and say its host one way only: the host is normalised as HTTP
clients do (lower case; a non-ASCII name mapped by UTS 46, `idna.encode(host, uts46=True)`), and
anything a client or a browser could read otherwise is refused — a backslash, credentials
(`user:pass@`), a control character or a space, a percent sign in the host, an empty host or
label, a non-ASCII name UTS 46 cannot map, a port outside 1–65535. Then the host must be — and
resolve only to — public addresses: never loopback, private, link-local, multicast, reserved or
otherwise not globally routable (cloud metadata at 169.254.169.254 included).

    parse(url, parameter) -> Target            the syntax alone (no DNS)
    resolve(target, allow_private, parameter)  resolves once, checks every address: the ones to
                                               connect to
    check_url(url, allow_private, parameter)   both: the API's check at submission

The API checks at submission (400 INVALID_WEBHOOK_URL / INVALID_INPUT_URL); each delivery
attempt, and each fetch (and each redirect it follows), parses and resolves again (DNS can
change) and connects to an address it checked — never resolving the name a second time
(worker/outbound_http.py). ALLOW_PRIVATE_ADDRESSES=true (WEBHOOK_ALLOW_PRIVATE, its old name;
development and tests; refused in production) lifts the address rule, not the syntax rules —
and never for link-local addresses (169.254.0.0/16, fe80::/10: cloud metadata services live
there, and no development setup needs them), so that even under the switch a URL or a redirect
cannot reach them.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import quote

import idna

from . import errors
from .errors import ServiceError

MAX_URL_LENGTH = 2048

# The parameters whose URLs the service calls, and the code a refusal of each answers with.
WEBHOOK_URL = "webhook_url"
INPUT_URL = "input_url"
_CODES = {WEBHOOK_URL: errors.INVALID_WEBHOOK_URL, INPUT_URL: errors.INVALID_INPUT_URL}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<rest>.*)",
                  re.DOTALL)
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?")
_PORT = re.compile(r"[0-9]{1,5}")
# Printable ASCII a request target may carry as is; everything else is percent-encoded (as
# requests does with a path's non-ASCII characters).
_TARGET_SAFE = "!#$%&'()*+,/:;=?@[]~-._"


@dataclass(frozen=True)
class Target:
    """A URL as the service reads it, and as it sends it."""

    scheme: str  # http | https
    host: str  # ASCII, lower case: a DNS name (UTS 46 applied), an IPv4 or an IPv6 address
    port: int
    path: str  # the request target: path and query, ASCII

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def is_literal(self) -> bool:
        """The host is an IP address (no name to resolve, no name to verify a certificate of)."""
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


def _refused(reason: str, parameter: str) -> ServiceError:
    return ServiceError(_CODES[parameter], f"{parameter} is refused: {reason}",
                        {"parameter": parameter}, status=400)


def _host(raw: str, parameter: str) -> str:
    """The host as an HTTP client connects to it (ASCII, lower case), or refused."""
    if raw.startswith("["):
        if not raw.endswith("]"):
            raise _refused("its IPv6 address is not closed by ]", parameter)
        try:
            address = ipaddress.IPv6Address(raw[1:-1])
        except ValueError:
            raise _refused("its host is not a valid IPv6 address", parameter) from None
        return str(address)
    if not raw:
        raise _refused("it must be an http or https URL with a host", parameter)
    if "%" in raw:
        raise _refused("its host must not be percent-encoded", parameter)
    if raw.isascii():
        host = raw.lower()
    else:
        try:
            host = idna.encode(raw, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise _refused("its host is not a name IDNA (UTS 46) can map", parameter) from None
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if len(host) > 253 or not all(len(label) <= 63 and _LABEL.fullmatch(label)
                                  for label in labels):
        raise _refused("its host must be a DNS name or an IP address", parameter)
    return host


def parse(url: str, parameter: str = WEBHOOK_URL) -> Target:
    """The URL's target, or ServiceError 400 (INVALID_WEBHOOK_URL, INVALID_INPUT_URL: the
    parameter's code) naming `parameter`. No DNS."""
    if len(url) > MAX_URL_LENGTH:
        raise _refused(f"longer than {MAX_URL_LENGTH} characters", parameter)
    if "\\" in url:
        raise _refused("it must not contain a backslash (read as / by some clients)",
                       parameter)
    if any(ord(char) <= 0x20 or 0x7F <= ord(char) <= 0x9F for char in url):
        raise _refused("it must not contain spaces or control characters", parameter)
    match = _URL.fullmatch(url)
    scheme = match["scheme"].lower() if match else ""
    if scheme not in ("http", "https"):
        raise _refused("it must be an http or https URL with a host", parameter)
    authority = match["authority"]
    if "@" in authority:
        raise _refused("it must not carry credentials", parameter)
    if authority.startswith("["):
        raw_host, bracket, after = authority.partition("]")
        raw_host += bracket  # none: refused by _host
        if after and not after.startswith(":"):
            raise _refused("not a URL", parameter)
        raw_port = after[1:] if after else None
    else:
        raw_host, colon, raw_port = authority.partition(":")
        raw_port = raw_port if colon else None
    if raw_port in (None, ""):
        port = 443 if scheme == "https" else 80
    elif _PORT.fullmatch(raw_port) and 1 <= int(raw_port) <= 65535:
        port = int(raw_port)
    else:
        raise _refused("its port must be a number from 1 to 65535", parameter)
    rest = match["rest"].partition("#")[0]  # the fragment is never sent
    path = quote(rest, safe=_TARGET_SAFE)
    if not path.startswith("/"):
        path = "/" + path
    return Target(scheme, _host(raw_host, parameter), port, path)


def _public(address: Address) -> bool:
    return address.is_global and not address.is_multicast


def _allowed(address: Address, allow_private: bool) -> bool:
    return _public(address) or (allow_private and not address.is_link_local)


def resolve(target: Target, allow_private: bool, parameter: str = WEBHOOK_URL) -> list[Address]:
    """The addresses to connect to, resolved once: every one the name resolves to, each checked
    (all must be public unless `allow_private`), or ServiceError 400 naming `parameter`."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise _refused(f"its host {target.host!r} does not resolve", parameter) from None
    found: list[Address] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not _allowed(address, allow_private):
            raise _refused("its host is or resolves to a non-public address", parameter)
        if address not in found:
            found.append(address)
    if not found:
        raise _refused(f"its host {target.host!r} does not resolve", parameter)
    return found


def check_url(url: str, allow_private: bool, parameter: str = WEBHOOK_URL) -> str:
    """The URL if the service may call it, else ServiceError 400 naming `parameter`. With
    `allow_private` the host is not resolved here (any address would do): the syntax alone."""
    target = parse(url, parameter)
    if not allow_private:
        resolve(target, allow_private, parameter)
    elif target.is_literal and not _allowed(ipaddress.ip_address(target.host), allow_private):
        raise _refused("its host is a link-local address", parameter)
    return url


def shown(url: str) -> str:
    """The URL as the service shows it (the job resource, logs): scheme, host, port and path,
    without its query string or fragment — a presigned URL's signature lives there."""
    return url.partition("#")[0].partition("?")[0]
