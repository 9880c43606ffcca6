"""3.5: each account's live signals feed only its own router choices."""

from __future__ import annotations

from application.breakers import Breakers, HealthBoard
from application.model_routers import ModelPicker
from application.resolve import Resolver
from application.routing_health import RoutingHealth
from service.routing_fakes import FakeReader, meta, principal, provider, view

A, B = principal(account="acct_a"), principal(account="acct_b")


def routed() -> tuple[Resolver, RoutingHealth]:
    reader = FakeReader(providers_=[provider("px"), provider("py")])
    reader.serve("acme/x-1", "px")
    reader.serve("acme/y-1", "py")
    reader.meta_ = [meta("acme/x-1", scores={"general": 80}),
                    meta("acme/y-1", scores={"general": 75})]
    health = RoutingHealth(Breakers.embedded(), HealthBoard())
    resolver = Resolver(view(reader), health)
    resolver.pick_model = ModelPicker(health)
    return resolver, health


def test_one_account_s_failures_change_its_own_router_choice_only():
    resolver, health = routed()
    assert resolver.resolve("router:general:quality", A).models == ["acme/x-1"]

    for _ in range(10):  # A's own window for x: 10 failures, a live success rate of 0
        health.accounts.record("acct_a", "acme/x-1", "error", 503, None, 10.0)

    assert health.live_success("acct_a", "acme/x-1") == 0.0
    assert health.live_success("acct_b", "acme/x-1") is None
    # composite for A: 0.7 x 80 + 0.3 x 0 = 56 < 75; B keeps the static 80
    assert resolver.resolve("router:general:quality", A).models == ["acme/y-1"]
    assert resolver.resolve("router:general:quality", B).models == ["acme/x-1"]


def test_every_attempt_feeds_its_account_s_window():
    _, health = routed()
    for _ in range(10):
        health.observe("px", "acme/x-1", "success", 200, 5.0, 5.0, account="acct_a")
    health.observe("px", "acme/x-1", "error", 503, None, 5.0, account="acct_b")

    assert health.wait_idle()
    assert health.live_success("acct_a", "acme/x-1") == 1.0
    assert health.live_success("acct_b", "acme/x-1") is None  # one sample: no rate yet
