"""Who layers 1 and 3 count (spec 1.9, 1.11) and when velocity mode halves them; no I/O.

Addresses are normalised before they become counting keys, so ``::ffff:1.2.3.4`` and
``1.2.3.4`` share one budget and an IPv6 subscriber cannot mint a fresh anonymous quota from
every address of its /64. Velocity mode is a pure state machine fed with explicit times.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_network,
)

from domain.client_address import parse_ip

Address = IPv4Address | IPv6Address
Networks = tuple[IPv4Network | IPv6Network, ...]


def _parse(ip: str) -> Address | None:
    return parse_ip(ip)  # one rule for addresses: ::ffff:a.b.c.d is the IPv4 client


def ip_subject(ip: str) -> str:
    """Layer-1 counting key: the normalised address (an unparsable one as given, bounded)."""
    addr = _parse(ip)
    return str(addr) if addr is not None else ip[:64]


def anonymous_subject(ip: str) -> str:
    """Layer-3 counting key: IPv4 per address, IPv6 per /64 (one subscriber's usual block)."""
    addr = _parse(ip)
    if isinstance(addr, IPv6Address):
        return str(IPv6Network((int(addr) >> 64 << 64, 64)))
    return str(addr) if addr is not None else ip[:64]


def parse_networks(networks: Iterable[str]) -> Networks:
    """Admin-entered networks or single addresses (``10.0.0.0/8``, ``2001:db8::1``).

    Raises ValueError on a malformed entry, so a typo is refused when the list is set
    rather than silently bypassing nobody.
    """
    return tuple(ip_network(n.strip(), strict=False) for n in networks)


def in_networks(ip: str, networks: Networks) -> bool:
    addr = _parse(ip)
    return addr is not None and any(addr.version == n.version and addr in n for n in networks)


def halved(limit: int) -> int:
    return max(1, limit // 2)


class VelocityMonitor:
    """1.9 velocity mode: when gateway 5xx reach ``threshold`` of at least ``min_requests``
    responses over ``window_s``, layers 1 and 3 run at half their limits for ``hold_s``.

    Counts per whole second (at most ``window_s`` buckets), so memory stays constant however
    busy the worker is. 4xx are responses like any other: they never count as errors.
    """

    def __init__(self, window_s: int = 60, hold_s: float = 180, min_requests: int = 100,
                 threshold: float = 0.25) -> None:
        self.window_s = window_s
        self.hold_s = hold_s
        self.min_requests = min_requests
        self.threshold = threshold
        self._buckets: deque[list[int]] = deque()  # [second, responses, 5xx]
        self._total = 0
        self._errors = 0
        self._until = float("-inf")

    def note(self, status: int, now_s: float) -> None:
        second = int(now_s)
        if self._buckets and self._buckets[-1][0] == second:
            bucket = self._buckets[-1]
        else:
            bucket = [second, 0, 0]
            self._buckets.append(bucket)
        error = 1 if 500 <= status <= 599 else 0
        bucket[1] += 1
        bucket[2] += error
        self._total += 1
        self._errors += error
        self._prune(second)
        if self._total >= self.min_requests and self._errors >= self.threshold * self._total:
            self._until = now_s + self.hold_s

    def _prune(self, second: int) -> None:
        while self._buckets and self._buckets[0][0] <= second - self.window_s:
            _, total, errors = self._buckets.popleft()
            self._total -= total
            self._errors -= errors

    def active(self, now_s: float) -> bool:
        return now_s < self._until
