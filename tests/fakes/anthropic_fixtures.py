"""Pytest fixtures for FakeAnthropic: one server per session, reset before each test.

Import both names into a conftest.py to use them:
    from fakes.anthropic_fixtures import fake_anthropic, fake_anthropic_server  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .anthropic_upstream import FakeAnthropic


@pytest.fixture(scope="session")
def fake_anthropic_server() -> Iterator[FakeAnthropic]:
    # One server for the whole session: starting a thread and a loop per test would
    # cost more than most of the tests that use it.
    with FakeAnthropic(name="fake-anthropic") as fake:
        yield fake


@pytest.fixture
def fake_anthropic(fake_anthropic_server: FakeAnthropic) -> Iterator[FakeAnthropic]:
    fake_anthropic_server.reset()
    yield fake_anthropic_server
    # Reset after too, so a script a test left unconsumed cannot leak into the next.
    fake_anthropic_server.reset()
