"""Two workers on one PostgreSQL and one Redis share circuit breakers (3.3): a breaker opened
by failures seen through one worker keeps the other worker's traffic off the provider."""

from __future__ import annotations

import dataclasses

import pytest
from fakes.openai_upstream import Behaviour, FakeOpenAI

from e2e.support import chat_body, customer, post_chat

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
MODEL = "acme/shared-1"


def test_a_breaker_opened_through_one_worker_is_open_for_the_other(served_cluster, tmp_path):
    from conftest import ServedGateway

    from entrypoints.bootstrap import Gateway

    first = served_cluster
    settings = dataclasses.replace(first.gateway.settings, data_dir=tmp_path / "second",
                                   run_projector=False)
    second_gw = Gateway(settings)
    # The owner exists already (one cluster, one owner): the second worker serves as is.
    second_gw.access.bootstrap_owner = lambda email: (None, first.owner_token)
    second = ServedGateway(second_gw)
    try:
        with FakeOpenAI(name="failing") as failing, FakeOpenAI(name="healthy") as healthy:
            first.register_provider("failing", failing.base_url)
            first.register_provider("healthy", healthy.base_url)
            first.set_price(MODEL, "failing", input_price="0.1", output_price="0.1")
            first.set_price(MODEL, "healthy", input_price="1", output_price="1")
            who = customer(first)
            failing.default = Behaviour(status=500)
            second_gw.catalog_view.refresh()  # it reads the same read model

            for _ in range(5):
                reply = post_chat(first, who.key, chat_body(model=MODEL))
                assert reply.headers["x-gatewayz-provider"] == "healthy"
            assert first.gateway.routing.health.wait_idle()
            assert len(failing.chat_requests()) == 5

            replies = [post_chat(second, who.key, chat_body(model=MODEL)) for _ in range(5)]

            assert [r.status_code for r in replies] == [200] * 5
            assert [r.headers["x-gatewayz-attempts"] for r in replies] == ["1"] * 5
            assert len(failing.chat_requests()) == 5  # the second worker never tried it
    finally:
        second.close()
        second_gw.close()
