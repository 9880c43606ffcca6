"""DNS resolution that drops private and special addresses, so provider calls cannot reach internal hosts."""

from __future__ import annotations

import errno
import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from domain.network_rules import BaseUrlError, blocked_reason, ip_literal


class AddressNotAllowed(OSError):
    """Every address of a host is private or special; str() and strerror carry the reasons."""

    def __init__(self, detail: str) -> None:
        # The two-argument form sets strerror, which aiohttp puts in its ClientConnectorError message.
        super().__init__(errno.EACCES, f"address not allowed: {detail}")

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def _reason(address: str) -> str | None:
    try:
        return blocked_reason(ipaddress.ip_address(address))
    except ValueError:
        # An answer we cannot judge is an answer we do not connect to.
        return "unparseable"


class CheckedResolver(AbstractResolver):
    """aiohttp resolver returning only allowed addresses; aiohttp then connects to exactly those.

    aiohttp skips the resolver for canonical IP-literal hosts, so URLs must also pass
    `parse_base_url`, and redirects must not be followed.
    """

    def __init__(self, allow_private: bool, resolver: AbstractResolver | None = None) -> None:
        self._allow_private = allow_private
        # ThreadedResolver binds to the running loop, so it is created on first use.
        self._inner = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = ThreadedResolver()
        results = await self._inner.resolve(host, port, family)
        if self._allow_private:
            return results
        allowed: list[ResolveResult] = []
        reasons: list[str] = []
        for result in results:
            reason = _reason(result["host"])
            if reason is None:
                allowed.append(result)
            else:
                reasons.append(reason)
        if not allowed:
            raise AddressNotAllowed(", ".join(sorted(set(reasons))) or "no addresses")
        return allowed

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


async def check_host(
    host: str, port: int, allow_private: bool, *, resolver: AbstractResolver | None = None
) -> list[str]:
    """Resolve a provider host at save time; refuse it if ANY address it resolves to is not allowed.

    Stricter than CheckedResolver, which merely drops bad addresses at connect time: a
    name that mixes public and internal addresses is a misconfiguration worth reporting.
    Raises OSError (socket.gaierror included) when resolution fails or an address is refused.
    """
    try:
        literal = ip_literal(host.lower())
    except BaseUrlError as exc:
        raise OSError(str(exc)) from None
    if literal is not None:
        addresses = [str(literal)]
    else:
        # The same resolver and flags aiohttp uses, so save time sees what connect time will.
        results = await (resolver or ThreadedResolver()).resolve(host, port, socket.AF_UNSPEC)
        addresses = list(dict.fromkeys(result["host"] for result in results))
    if not allow_private:
        for address in addresses:
            reason = _reason(address)
            if reason is not None:
                raise AddressNotAllowed(f"{reason} ({address})")
    if not addresses:
        raise OSError(f"no addresses found for {host!r}")
    return addresses
