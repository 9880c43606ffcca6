"""Property (11.10): the balance as of any past instant is the live balance seen then.

A random history runs through the real use cases (grants, allowance resets, new accounts,
and inference requests sent through ``gw.inference.chat`` to the fake provider port: JSON
answers with random usage, streams left open across steps and later finished or
abandoned). After each step the writer and the projector are run to idle and the live
balance of every account is snapshotted, between two instants: one after the step's last
event was made and one before the next step begins. Then, for random instants inside those
gaps, the as-of balance (time form and position form) must equal the snapshot, and an
account opened later must not exist yet. The projector runs only when asked, so nothing
moves between a step and its snapshot. One gateway per backend serves every example.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import BACKENDS
from fakes.provider_port import FakeProviderPort, json_answer, stream_answer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from service.support import SOLO, add_providers, chat, customer, install_port

from domain.errors import DomainError
from integration.support import quiet_gateway
from projections import as_of
from projections.as_of import AsOfResolver
from projections.base import stamp

EXAMPLES = {"memory": 100, "sqlite": 60, "postgres": 30}
FUNDS = 1_000_000  # covers every request of a history (each costs at most a few thousand)


@dataclass
class World:
    gw: Any
    port: FakeProviderPort
    loop: asyncio.AbstractEventLoop


@dataclass
class History:
    accounts: list[tuple[str, Any]] = field(default_factory=list)  # (id, principal)
    streams: list[Any] = field(default_factory=list)
    gaps: list[tuple[datetime, datetime, dict[str, dict]]] = field(default_factory=list)


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, tmp_path_factory):
    settle_s = as_of.SETTLE_S
    # Nothing is in flight when this test queries (it runs every step to completion), so
    # an instant with no later event needs no settling time here.
    as_of.SETTLE_S = 0.0
    try:
        with quiet_gateway(request.param, tmp_path_factory.mktemp(request.param)) as gw:
            add_providers(gw)
            loop = asyncio.new_event_loop()
            try:
                yield World(gw, install_port(gw), loop)
            finally:
                loop.close()
    finally:
        as_of.SETTLE_S = settle_s


def idle(gw) -> None:
    assert gw.writer.wait_idle(10)
    gw.projector.run_until_idle()


def snapshot(gw, history: History) -> dict[str, dict]:
    now = int(datetime.now(UTC).timestamp())
    return {account_id: gw.balances.balance(account_id, now)
            for account_id, _ in history.accounts}


async def _drain(stream) -> None:
    async for _ in stream:
        pass


def step(world: World, history: History, action: tuple) -> None:
    gw, port, run = world.gw, world.port, world.loop.run_until_complete
    kind = action[0]
    who = history.accounts[action[1] % len(history.accounts)] if len(action) > 1 else None
    if kind == "grant":
        gw.accounts.grant_credits(who[0], action[2], "as-of history grant", "usr_as_of")
    elif kind == "allowance":
        gw.accounts.reset_allowance(who[0], "team", f"in_{uuid.uuid4().hex}", action[2], 0)
    elif kind == "open":
        history.accounts.append(customer(gw, action[2], credit=FUNDS))
    elif kind in ("infer", "stream"):
        port.reset()
        if kind == "infer":
            port.will(json_answer("hi", prompt_tokens=action[2], completion_tokens=action[3]))
        else:
            port.will(stream_answer(["a ", "b ", "c "], usage=(action[2], action[3])))
        try:
            response = run(gw.inference.chat(f"req_{uuid.uuid4().hex}",
                                             chat(SOLO, max_tokens=500, stream=kind == "stream"),
                                             who[1]))
        except DomainError as refused:  # no credit: nothing recorded
            assert refused.code == "insufficient_credits", refused
            return
        if kind == "stream":
            run(response.stream.__anext__())  # the hold stays open across steps
            history.streams.append(response.stream)
    elif kind == "end" and history.streams:
        stream = history.streams.pop(0)
        run(_drain(stream) if action[2] else stream.aclose())


ACTIONS = st.one_of(
    st.tuples(st.just("infer"), st.integers(0, 9), st.integers(0, 300), st.integers(0, 600)),
    st.tuples(st.just("stream"), st.integers(0, 9), st.integers(0, 300), st.integers(0, 600)),
    st.tuples(st.just("end"), st.integers(0, 9), st.booleans()),
    st.tuples(st.just("grant"), st.integers(0, 9), st.integers(1, 3_000_000)),
    st.tuples(st.just("allowance"), st.integers(0, 9), st.integers(0, 2_000_000)),
    st.tuples(st.just("open"), st.integers(0, 9), st.sampled_from(["trial", "dev"])),
)


def run_history(world: World, plans: list[str], actions: list[tuple]) -> History:
    history = History()
    for plan in plans:
        history.accounts.append(customer(world.gw, plan, credit=FUNDS))
    idle(world.gw)
    for action in [*actions, None]:
        after = datetime.now(UTC)  # every event so far was made before this
        views = snapshot(world.gw, history)
        history.gaps.append((after, datetime.now(UTC), views))
        if action is not None:
            step(world, history, action)
            idle(world.gw)
    return history


def check_instant(world: World, history: History, gap: int, fraction: float) -> None:
    start, end, views = history.gaps[gap]
    span = (end - start) // timedelta(microseconds=1)
    if span == 0:  # no instant strictly between the two
        return
    instant = stamp(start + timedelta(microseconds=int(span * fraction)))
    resolver = AsOfResolver(world.gw.db, world.gw.stores.max_positions)
    point = resolver.at_time(instant)
    again = resolver.at_positions(",".join(f"{c}:{p}" for c, p in point.positions.items()))
    assert again.positions == point.positions and (again.instant or "") <= instant
    for account_id, _ in history.accounts:
        expected = views.get(account_id)  # None: opened after this gap
        for at in (point, again):
            assert world.gw.balances.balance(account_id, 0, at) == expected, (gap, instant)


def test_the_balance_as_of_any_past_instant_is_the_one_seen_at_that_instant(world):
    backend = world.gw.config.kind

    @settings(max_examples=EXAMPLES.get(backend, 8), deadline=None, database=None,
              phases=[p for p in Phase if p is not Phase.shrink],
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(plans=st.lists(st.sampled_from(["trial", "dev", "team"]), min_size=1, max_size=2),
           actions=st.lists(ACTIONS, min_size=1, max_size=10), data=st.data())
    def history_holds(plans, actions, data) -> None:
        history = run_history(world, plans, actions)
        try:
            for _ in range(data.draw(st.integers(2, 5), label="instants")):
                check_instant(world, history,
                              data.draw(st.integers(0, len(history.gaps) - 1), label="gap"),
                              data.draw(st.floats(0, 0.999), label="fraction"))
        finally:
            for stream in history.streams:
                world.loop.run_until_complete(stream.aclose())
            idle(world.gw)

    history_holds()
