"""Fixtures of the FakeOpenAI proofs: one fake per module, reset per test, and the real
openai SDK pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from fakes.openai_upstream import FakeOpenAI


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(name="sdk-test") as fake:
        yield fake


@pytest.fixture
def fake(server: FakeOpenAI) -> FakeOpenAI:
    server.reset()
    return server


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    # No retries: a retried request would hide which behaviour answered it.
    with openai.OpenAI(base_url=fake.base_url, api_key="x", max_retries=0, timeout=5) as sdk:
        yield sdk
