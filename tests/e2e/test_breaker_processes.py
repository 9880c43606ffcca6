"""Two `gatewayz serve` processes on one PostgreSQL schema and one Redis share circuit
breakers (3.3): failures seen through one process open the breaker, and the other process
then sends the failing upstream nothing."""

from __future__ import annotations

import copy
import time

import pytest
from fakes.openai_upstream import Behaviour, FakeOpenAI

from e2e.crash_support import Deployment
from e2e.support import chat_body, customer, post_chat

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
MODEL = "acme/shared-2"


def open_breakers(server, timeout: float = 5.0) -> dict[str, str]:
    """Breaker states as a process reports them, once the failing provider's is open (the
    first process records outcomes in a background thread, just after answering)."""
    deadline = time.monotonic() + timeout
    while True:
        states = {b["key"]: b["state"] for b in server.admin(
            "GET", "/admin/circuit-breakers").json()["data"]}
        if states.get("p:failing") == "open" or time.monotonic() > deadline:
            return states
        time.sleep(0.05)


def test_a_breaker_opened_through_one_process_keeps_the_other_off_the_provider(tmp_path):
    deployment = Deployment("cluster", tmp_path)
    owner = deployment.bootstrap()
    # Same schema and Redis prefix, its own data directory (one `serve` per directory).
    second = copy.copy(deployment)
    second.data_dir, second._servers = tmp_path / "second", []
    try:
        with FakeOpenAI(name="failing") as failing, FakeOpenAI(name="healthy") as healthy:
            one = deployment.serve(owner)
            one.register_provider("failing", failing.base_url)
            one.register_provider("healthy", healthy.base_url)
            one.set_price(MODEL, "failing", input_price="0.1", output_price="0.1")
            one.set_price(MODEL, "healthy", input_price="1", output_price="1")
            who = customer(one)
            two = second.serve(owner)
            failing.default = Behaviour(status=500)

            first = [post_chat(one, who.key, chat_body(model=MODEL)) for _ in range(5)]
            assert [r.headers["x-gatewayz-provider"] for r in first] == ["healthy"] * 5
            assert len(failing.chat_requests()) == 5
            breakers = open_breakers(two)

            later = [post_chat(two, who.key, chat_body(model=MODEL)) for _ in range(5)]

            assert breakers.get("p:failing") == "open"  # seen from the other process
            assert [r.status_code for r in later] == [200] * 5
            assert [r.headers["x-gatewayz-attempts"] for r in later] == ["1"] * 5
            assert len(failing.chat_requests()) == 5  # nothing from the second process
    finally:
        second.close()
        deployment.close()
