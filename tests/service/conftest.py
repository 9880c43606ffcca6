"""Fixtures of the service tests: a gateway over the memory backend with the fake provider port
in place of its ``http`` client, and an event loop to run the async use case on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fakes.provider_port import FakeProviderPort
from integration.support import quiet_gateway

from service.support import add_providers, install_port


@pytest.fixture
def gw(tmp_path) -> Iterator:
    with quiet_gateway("memory", tmp_path / "data") as gateway:
        add_providers(gateway)
        yield gateway


@pytest.fixture
def port(gw) -> FakeProviderPort:
    return install_port(gw)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
