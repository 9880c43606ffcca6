"""Fixtures of the end-to-end suite."""

from __future__ import annotations

import pytest

from e2e.support import price_model


@pytest.fixture
def priced(served, fake_openai):
    """A served gateway whose model acme/chat-1 is priced on the fake upstream (input 1,
    output 2 micro-USD per token)."""
    price_model(served, fake_openai)
    return served
