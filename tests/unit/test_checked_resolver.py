"""Tests for adapters.checked_resolver against real local servers and a scripted inner resolver."""

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver

from adapters.checked_resolver import AddressNotAllowed, CheckedResolver, check_host

TIMEOUT = aiohttp.ClientTimeout(total=5)


class ScriptedResolver(AbstractResolver):
    """Answers every lookup with fixed addresses, so no DNS is needed."""

    def __init__(self, addresses):
        self.addresses = addresses
        self.closed = False

    async def resolve(self, host, port=0, family=socket.AF_INET):
        return [
            {
                "hostname": host,
                "host": a,
                "port": port,
                "family": socket.AF_INET6 if ":" in a else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for a in self.addresses
        ]

    async def close(self):
        self.closed = True


async def _start_app():
    hits = []

    async def handler(request):
        hits.append(request.path)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port, hits


async def _get(url, allow_private):
    connector = aiohttp.TCPConnector(resolver=CheckedResolver(allow_private), force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session:
        async with session.get(url, allow_redirects=False) as response:
            return response.status, await response.text()


@pytest.mark.parametrize("host", ["localhost", "0x7f000001"])
def test_refuses_loopback_and_server_receives_nothing(host):
    async def scenario():
        runner, port, hits = await _start_app()
        try:
            with pytest.raises(aiohttp.ClientConnectorError) as info:
                await _get(f"http://{host}:{port}/v1/models", allow_private=False)
            return hits, str(info.value)
        finally:
            await runner.cleanup()

    hits, message = asyncio.run(scenario())
    assert hits == []
    assert "address not allowed: loopback" in message


def test_allow_private_connects():
    async def scenario():
        runner, port, hits = await _start_app()
        try:
            return await _get(f"http://localhost:{port}/v1/models", allow_private=True), hits
        finally:
            await runner.cleanup()

    (status, body), hits = asyncio.run(scenario())
    assert (status, body) == (200, "ok")
    assert hits == ["/v1/models"]


def test_refused_connection_never_reaches_the_socket():
    async def scenario():
        accepted = []

        async def on_connect(reader, writer):
            accepted.append(True)
            writer.close()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(aiohttp.ClientConnectorError):
                await _get(f"http://localhost:{port}/", allow_private=False)
            await asyncio.sleep(0.05)
        finally:
            server.close()
            await server.wait_closed()
        return accepted

    assert asyncio.run(scenario()) == []


def test_drops_blocked_addresses_and_keeps_public_ones():
    inner = ScriptedResolver(
        [
            "10.0.0.1",
            "93.184.216.34",
            "169.254.169.254",
            "fe80::1%eth0",
            "not-an-ip",
            "2606:4700::1111",
        ]
    )
    resolver = CheckedResolver(False, resolver=inner)
    results = asyncio.run(resolver.resolve("provider.example", 443))
    assert [r["host"] for r in results] == ["93.184.216.34", "2606:4700::1111"]
    assert all(r["port"] == 443 for r in results)


def test_raises_os_error_naming_reasons_when_nothing_is_left():
    resolver = CheckedResolver(False, resolver=ScriptedResolver(["10.0.0.1", "169.254.169.254"]))
    with pytest.raises(AddressNotAllowed) as info:
        asyncio.run(resolver.resolve("provider.example", 443))
    assert isinstance(info.value, OSError)
    assert str(info.value) == "address not allowed: metadata, private"


def test_allow_private_passes_everything_through_and_close_delegates():
    inner = ScriptedResolver(["10.0.0.1", "127.0.0.1"])
    resolver = CheckedResolver(True, resolver=inner)
    assert [r["host"] for r in asyncio.run(resolver.resolve("x", 80))] == ["10.0.0.1", "127.0.0.1"]
    asyncio.run(resolver.close())
    assert inner.closed


def test_check_host_literals_and_localhost():
    assert asyncio.run(check_host("localhost", 80, True)) == ["127.0.0.1"]
    assert asyncio.run(check_host("0x7f000001", 80, True)) == ["127.0.0.1"]
    assert asyncio.run(check_host("[::1]", 80, True)) == ["::1"]
    assert asyncio.run(check_host("8.8.8.8", 443, False)) == ["8.8.8.8"]
    for host in ("localhost", "127.0.0.1", "2130706433", "[::ffff:10.0.0.1]", "169.254.169.254"):
        with pytest.raises(OSError, match="address not allowed"):
            asyncio.run(check_host(host, 443, False))
    with pytest.raises(OSError):
        asyncio.run(check_host("1.2.3.4.5", 443, False))


def test_check_host_refuses_any_blocked_address():
    mixed = ScriptedResolver(["93.184.216.34", "10.0.0.1"])
    with pytest.raises(OSError, match="private"):
        asyncio.run(check_host("provider.example", 443, False, resolver=mixed))
    assert asyncio.run(check_host("provider.example", 443, True, resolver=mixed)) == [
        "93.184.216.34",
        "10.0.0.1",
    ]
    public = ScriptedResolver(["93.184.216.34", "93.184.216.34"])
    assert asyncio.run(check_host("provider.example", 443, False, resolver=public)) == [
        "93.184.216.34"
    ]
    with pytest.raises(OSError, match="no addresses"):
        asyncio.run(check_host("provider.example", 443, False, resolver=ScriptedResolver([])))
