"""Pytest fixtures for FakeOpenAI: one server per session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .openai_upstream import FakeOpenAI


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    # One server for the whole session: starting a thread and a loop per test would
    # cost more than most of the tests that use it.
    with FakeOpenAI(name="fake-openai") as fake:
        yield fake


@pytest.fixture
def fake_openai(fake_openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    fake_openai_server.reset()
    yield fake_openai_server
    # Reset after too, so a script a test left unconsumed cannot leak into the next.
    fake_openai_server.reset()
