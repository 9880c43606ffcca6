"""Who is calling from where: the client IP (1.6) and the browser's referrer host (1.7).

Pure and cheap per request: an allowlist is parsed once per distinct tuple of entries
(``functools.lru_cache``), after which a check is a few integer masks or a set lookup.
The referrer check protects browser use only: a server-side caller can send any
``Origin``/``Referer`` it likes, so it is a guard against a key copied into someone else's
web page, not an authentication.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from urllib.parse import urlsplit

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

_MAPPED = IPv6Network("::ffff:0:0/96")
_HOST_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


# -- IP addresses -----------------------------------------------------------------------------
def parse_ip(text: object) -> IPAddress | None:
    """An address, IPv4-mapped IPv6 turned into IPv4 (1.6: ``::ffff:a.b.c.d`` is IPv4)."""
    if isinstance(text, IPv4Address | IPv6Address):
        address = text
    elif isinstance(text, str):
        try:
            address = ip_address(text.strip())
        except ValueError:
            return None
    else:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_network(entry: str) -> IPNetwork:
    """One allowlist entry (address or CIDR) as a network; ValueError when it is not one.

    Host bits after the prefix (``10.0.0.7/24``) are refused rather than silently dropped:
    the writer may have meant a single host. A mapped IPv6 network is turned into the IPv4
    network it covers, as client addresses are compared in IPv4 form.
    """
    network = ip_network(entry.strip(), strict=True)
    if isinstance(network, IPv6Network) and network.prefixlen >= 96 and \
            network.subnet_of(_MAPPED):
        v4 = IPv4Address(int(network.network_address) & 0xFFFFFFFF)
        return IPv4Network((v4, network.prefixlen - 96))
    return network


def _masks(networks: Iterable[IPNetwork]) -> tuple[tuple[tuple[int, int], ...], ...]:
    """(network, mask) integer pairs for IPv4 and IPv6 apart: a check is one AND each."""
    by_version: tuple[list[tuple[int, int]], list[tuple[int, int]]] = ([], [])
    for net in networks:
        by_version[net.version == 6].append((int(net.network_address), int(net.netmask)))
    return tuple(by_version[0]), tuple(by_version[1])


@lru_cache(maxsize=4096)
def _allowlist(entries: tuple[str, ...]) -> tuple[tuple[tuple[int, int], ...], ...] | None:
    networks = []
    for entry in entries:
        try:
            networks.append(parse_network(entry))
        except (ValueError, TypeError, AttributeError):
            # Entries are validated on write; one that is not valid here cannot match.
            continue
    return _masks(networks)


@lru_cache(maxsize=64)
def _trusted(ranges: tuple[object, ...]) -> tuple[tuple[tuple[int, int], ...], ...]:
    return _masks(r if isinstance(r, IPv4Network | IPv6Network) else parse_network(str(r))
                  for r in ranges)


def _inside(address: IPAddress, masks: tuple[tuple[tuple[int, int], ...], ...]) -> bool:
    value = int(address)
    return any(value & mask == net for net, mask in masks[address.version == 6])


def ip_allowed(ip: object, allowlist: Iterable[str]) -> bool:
    """1.6: an empty list is no restriction; with entries an unknown IP never passes."""
    entries = allowlist if isinstance(allowlist, tuple) else tuple(allowlist)
    if not entries:
        return True
    address = parse_ip(ip)
    if address is None:
        return False
    return _inside(address, _allowlist(entries))


def _forwarded_address(item: str) -> IPAddress | None:
    """One X-Forwarded-For item; some proxies append a port (``1.2.3.4:5``, ``[::1]:5``)."""
    item = item.strip().strip('"')
    address = parse_ip(item)
    if address is not None:
        return address
    if item.startswith("["):
        return parse_ip(item[1:].partition("]")[0])
    host, colon, port = item.rpartition(":")
    if colon and port.isdigit() and "." in host:
        return parse_ip(host)
    return None


def client_ip(peer: str | None, forwarded_for: str | None,
              trusted: Iterable[object] = ()) -> str | None:
    """See _client_ip; answered from a small cache (the same few peers call again). A long
    X-Forwarded-For is the client's to choose, so it is never kept: 4,096 entries of at most
    256 characters bound the cache."""
    trusted = tuple(trusted)
    if forwarded_for is not None and len(forwarded_for) > 256:
        return _client_ip.__wrapped__(peer, forwarded_for, trusted)
    return _client_ip(peer, forwarded_for, trusted)


@lru_cache(maxsize=4096)
def _client_ip(peer: str | None, forwarded_for: str | None,
               trusted: tuple[object, ...]) -> str | None:
    """The client's address (1.6), as text; None when it cannot be known.

    The socket peer, unless the peer is a trusted proxy: then the right-most
    ``X-Forwarded-For`` address that is not itself trusted, since every address left of
    the last trusted hop could have been written by the client. An unparseable item on
    that walk makes the client unknown (a non-empty allowlist then refuses). A trusted
    peer with no header is its own client; a chain of trusted hops only, its left-most.
    """
    address = parse_ip(peer)
    if address is None:
        return None
    masks = _trusted(tuple(trusted))
    if not _inside(address, masks) or not forwarded_for:
        return str(address)
    hops = [item for item in forwarded_for.split(",") if item.strip()]
    for item in reversed(hops):
        hop = _forwarded_address(item)
        if hop is None:
            return None
        address = hop
        if not _inside(hop, masks):
            break
    return str(address)


# -- referrer hosts ---------------------------------------------------------------------------
def normalise_host(host: str) -> str | None:
    """Lower-case ASCII (IDNA) form of a host name or IP literal; None if it is neither."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    address = parse_ip(host)
    if address is not None:
        return str(address)
    host = host[:-1] if host.endswith(".") else host
    if not host or len(host) > 253:
        return None
    try:
        # The standard codec (IDNA 2003) also checks each label is 1-63 characters.
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    for label in ascii_host.split("."):
        if not label or not set(label) <= _HOST_LABEL_CHARS or \
                label.startswith("-") or label.endswith("-"):
            return None
    return ascii_host


def _host_of(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return None
    if not parts.scheme or not host:
        return None
    return normalise_host(host)


def referrer_host(origin: str | None, referer: str | None) -> str | None:
    """1.7: the host of ``Origin``, or of ``Referer`` when Origin is absent.

    ``Origin: null`` (sandboxed frames, some redirects) names no host, so it counts as
    absent. An Origin that is present but unparseable is not replaced by the Referer:
    the browser's own statement failed, and the check must then refuse.
    """
    if origin is not None and origin.strip() and origin.strip().lower() != "null":
        return _host_of(origin)
    if referer is not None and referer.strip():
        return _host_of(referer)
    return None


@lru_cache(maxsize=4096)
def _referrers(entries: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    exact, suffixes = set(), []
    for entry in entries:
        if not isinstance(entry, str):
            continue
        wildcard = entry.strip().startswith("*.")
        host = normalise_host(entry.strip()[2:] if wildcard else entry)
        if host is None:
            continue  # validated on write; an entry that cannot be read matches nothing
        if wildcard:
            suffixes.append("." + host)  # the dot keeps example.com and evilexample.com out
        else:
            exact.add(host)
    return frozenset(exact), tuple(suffixes)


def referrer_allowed(host: str | None, allowlist: Iterable[str]) -> bool:
    """1.7: empty list passes everything; otherwise the host must match an entry."""
    entries = allowlist if isinstance(allowlist, tuple) else tuple(allowlist)
    if not entries:
        return True
    if host is None:
        return False
    exact, suffixes = _referrers(entries)
    host = host.lower()
    return host in exact or host.endswith(suffixes)  # endswith(()) is False
