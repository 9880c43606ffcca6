"""Pure rules for which provider base URLs and IP addresses the gateway may connect to (spec 5.1)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from urllib.parse import urlsplit

IPAddress = IPv4Address | IPv6Address


class BaseUrlError(ValueError):
    """A provider base URL that is malformed or points somewhere the gateway must not call."""


_METADATA = frozenset(
    {IPv4Address("169.254.169.254"), IPv4Address("100.100.100.200"), IPv6Address("fd00:ec2::254")}
)
_THIS_NETWORK = IPv4Network("0.0.0.0/8")
_CARRIER_GRADE_NAT = IPv4Network("100.64.0.0/10")
_PRIVATE_V4 = (
    IPv4Network("10.0.0.0/8"),
    IPv4Network("172.16.0.0/12"),
    IPv4Network("192.168.0.0/16"),
)
_PRIVATE_V6 = (IPv6Network("fc00::/7"), IPv6Network("fec0::/10"))
_NAT64 = IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = IPv6Network("::/96")


def _v4_reason(ip: IPv4Address) -> str | None:
    if ip in _METADATA:
        return "metadata"
    # Linux connects 0.0.0.0 to the local host, so the whole "this network" block is refused.
    if ip in _THIS_NETWORK:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link_local"
    if ip in _CARRIER_GRADE_NAT:
        return "carrier_grade_nat"
    if ip.is_multicast:
        return "multicast"
    if any(ip in net for net in _PRIVATE_V4):
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "not_global"
    return None


def _v6_reason(ip: IPv6Address) -> str | None:
    if ip in _METADATA:
        return "metadata"
    # Mapped and NAT64 addresses reach the embedded IPv4 host, so only that host matters.
    if ip.ipv4_mapped is not None:
        return _v4_reason(ip.ipv4_mapped)
    if ip in _NAT64:
        return _v4_reason(IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    embedded = ip.sixtofour
    if embedded is None and ip in _IPV4_COMPATIBLE:
        embedded = IPv4Address(int(ip))
    if embedded is not None and (reason := _v4_reason(embedded)) is not None:
        return reason
    if ip.is_link_local:
        return "link_local"
    if ip.is_multicast:
        return "multicast"
    if any(ip in net for net in _PRIVATE_V6):
        return "private"
    if ip.is_reserved:
        return "reserved"
    # Python 3.11 calls some special-purpose IPv6 ranges global; is_private catches the rest.
    if not ip.is_global or ip.is_private:
        return "not_global"
    return None


def blocked_reason(ip: IPAddress) -> str | None:
    """Why the gateway must not connect to this address, or None when it is public."""
    if isinstance(ip, IPv6Address):
        # A zone id ("%eth0") does not change where the address points.
        return _v6_reason(IPv6Address(int(ip)))
    return _v4_reason(ip)


_INET_ATON_PART = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")


def parse_inet_aton(text: str) -> IPv4Address | None:
    """Parse every IPv4 spelling the C library's inet_aton accepts (127.1, 0x7f000001, 017700000001...)."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = []
    for part in parts:
        if not _INET_ATON_PART.fullmatch(part):
            return None
        if part[:2].lower() == "0x":
            values.append(int(part[2:], 16))
        elif part.startswith("0"):
            values.append(int(part, 8))
        else:
            values.append(int(part))
    # Leading parts are single bytes; the last part fills all the bytes that remain.
    *head, last = values
    if any(v > 0xFF for v in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    number = last
    for i, v in enumerate(head):
        number |= v << (8 * (3 - i))
    return IPv4Address(number)


_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*", re.IGNORECASE)
_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def ip_literal(host: str) -> IPAddress | None:
    """The address a URL host denotes when it is an IP literal in any accepted spelling, else None.

    Raises BaseUrlError for hosts that look numeric but are no valid address, since
    resolvers disagree about what such names mean.
    """
    if host.startswith("[") or ":" in host:
        inner = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if "%" in inner:
            raise BaseUrlError("IPv6 zone identifiers are not allowed in base URLs")
        try:
            return IPv6Address(inner)
        except ValueError:
            raise BaseUrlError(f"invalid IPv6 address {inner!r}") from None
    name = host[:-1] if host.endswith(".") else host
    # As in the WHATWG URL standard: a numeric last label makes the whole host an IPv4 address.
    if _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
        address = parse_inet_aton(name)
        if address is None:
            raise BaseUrlError(f"invalid IPv4 address {host!r}")
        return address
    return None


def _check_hostname(host: str) -> None:
    name = host[:-1] if host.endswith(".") else host
    if (
        not name
        or len(name) > 253
        or not all(_HOST_LABEL.fullmatch(label) for label in name.split("."))
    ):
        raise BaseUrlError(f"invalid host name {host!r}")


def _hostname_reason(host: str) -> str | None:
    name = host.rstrip(".")
    # These names are answered locally by design (RFC 6761, GCP), whatever DNS says later.
    if name == "localhost" or name.endswith(".localhost"):
        return "loopback"
    if name == "metadata.google.internal":
        return "metadata"
    return None


@dataclass(frozen=True)
class ParsedBaseUrl:
    """A validated provider base URL; IPv6 hosts are stored without brackets, path has no trailing slash."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}"


def _split_netloc(netloc: str, scheme: str) -> tuple[str, int]:
    if netloc.startswith("["):
        end = netloc.find("]")
        host, rest = (netloc[: end + 1], netloc[end + 1 :]) if end != -1 else (netloc, "")
    else:
        head, colon, tail = netloc.rpartition(":")
        host, rest = (head, colon + tail) if colon else (netloc, "")
    if host in ("", "[]"):
        raise BaseUrlError("base URL must include a host")
    if rest in ("", ":"):
        return host, 443 if scheme == "https" else 80
    # int() alone would accept "+80" and "08_0".
    digits = rest[1:]
    if (
        not rest.startswith(":")
        or not digits.isdigit()
        or not digits.isascii()
        or not 0 < int(digits) < 65536
    ):
        raise BaseUrlError(f"base URL has an invalid port {rest[1:]!r}")
    return host, int(digits)


# Python's urlsplit silently deletes tabs and newlines, so such input is refused before parsing.
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_MAX_URL_LENGTH = 2048


def parse_base_url(url: str, allow_private: bool) -> ParsedBaseUrl:
    """Validate a provider base URL; private and special addresses are refused unless allow_private."""
    if not isinstance(url, str) or not url:
        raise BaseUrlError("base URL is required")
    if len(url) > _MAX_URL_LENGTH:
        raise BaseUrlError(f"base URL is longer than {_MAX_URL_LENGTH} characters")
    if not url.isascii() or _FORBIDDEN_CHARS.search(url):
        raise BaseUrlError(
            "base URL must not contain spaces, control characters, backslashes or non-ASCII characters"
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise BaseUrlError(f"invalid base URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_private):
        raise BaseUrlError(f"base URL must use https, not {scheme or 'no scheme'!r}")
    if "#" in url:
        raise BaseUrlError("base URL must not contain a fragment")
    if "?" in url:
        raise BaseUrlError("base URL must not contain a query string")
    if "@" in parts.netloc:
        raise BaseUrlError("base URL must not contain a user name or password")
    raw_host, port = _split_netloc(parts.netloc, scheme)
    if "%" in raw_host:
        raise BaseUrlError("base URL host must not be percent-encoded")
    host = raw_host.lower()
    address = ip_literal(host)
    if address is None:
        _check_hostname(host)
        reason = _hostname_reason(host)
    else:
        host = str(address)
        reason = blocked_reason(address)
    if reason is not None and not allow_private:
        raise BaseUrlError(
            f"base URL host {raw_host!r} is not allowed: {reason.replace('_', ' ')} address"
        )
    return ParsedBaseUrl(scheme=scheme, host=host, port=port, path=parts.path.rstrip("/"))
