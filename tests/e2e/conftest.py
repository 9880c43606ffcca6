"""Fixtures of the end-to-end suite."""

from __future__ import annotations

import pytest

from e2e.anthropic_support import price_anthropic
from e2e.support import price_model


@pytest.fixture
def priced(served, fake_openai):
    """A served gateway whose model acme/chat-1 is priced on the fake upstream (input 1,
    output 2 micro-USD per token)."""
    price_model(served, fake_openai)
    return served


@pytest.fixture
def both(served, fake_openai, fake_anthropic):
    """A served gateway with acme/chat-1 on the fake OpenAI upstream and claude/sonnet-x on
    the fake Anthropic one, both at input 1 and output 2 micro-USD per token."""
    price_model(served, fake_openai)
    price_anthropic(served, fake_anthropic)
    return served
