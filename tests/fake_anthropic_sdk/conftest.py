"""Fixtures of the FakeAnthropic proofs: the shared fake, reset per test, and the real
anthropic SDK pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest
from fakes.anthropic_fixtures import fake_anthropic, fake_anthropic_server  # noqa: F401
from fakes.anthropic_upstream import FakeAnthropic


@pytest.fixture
def fake(fake_anthropic: FakeAnthropic) -> FakeAnthropic:  # noqa: F811
    return fake_anthropic


@pytest.fixture
def client(fake: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    # No retries: a retried request would hide which behaviour answered it.
    with anthropic.Anthropic(base_url=fake.root_url, api_key=fake.api_key, max_retries=0,
                             timeout=5) as sdk:
        yield sdk
