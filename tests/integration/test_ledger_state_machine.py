"""Property test of the ledger (6.1, 6.3, 6.4, 11.9): random money commands and inference
requests over several accounts, with a lagging projector, checked against an exact model.

A Hypothesis state machine opens 2-3 accounts (trial, dev or team), grants and buys credit,
resets allowances, and sends inference requests through the real use case,
``gw.inference.chat``, whose ``http`` provider client is the FakeProviderPort
(tests/fakes/provider_port.py): JSON and SSE answers with random usage (often more than the
hold covers), answers without usage (estimated), failover to the second provider after a
500/429/connection error/timeout, every provider failing, a 400, broken and empty streams,
and streams left open across steps that the client later finishes or abandons. Sweeps expire
holds as if the TTL had passed; the worker's maintenance pass reconciles at random moments.

Nothing projects behind the test's back: this gateway's projector runs in the rule
``project`` and inside account commands (their read-your-writes wait runs it), never after
inference, so the read model lags the event store between steps. A second Projector over the
same stores and read model (``project_elsewhere``) plays another process (``gatewayz
projector``): in the Redis variant it publishes to the shared Redis (or its publication is
lost); in the other-process variant it can reach nothing, and the in-process hold store must
notice that progress by itself.

The model keeps, per account, the exact pools and open holds (the event store's truth), the
same as last projected (what the read model must show at every step), and the hold store it
expects. Checked:
- after every step: no pool negative; the read model equals the lagged model exactly; the
  hold store never offers more than the truth, and equals its model while no other process
  projected the account's events;
- on every placement: no pool reserved beyond its true free amount; while the hold store is
  exact, reserved exactly when it covers the hold, in spend order trial -> allowance ->
  purchased; a refusal (402 insufficient_credits) writes no event and calls no provider;
- each request's events: HoldPlaced then the expected terminal event (charge min(cost, hold)
  split in spend order, cost and uncollected, provider; or the void reason; or HoldExpired);
- in ``project`` (after projecting to idle, then again after ``gw.reconciler.reconcile_all``)
  and at teardown: read model == exact model == fold of the raw events; statement lines sum
  to the balance; hold store available == read-model available and its cached holds are
  exactly the open ones. At teardown (open streams finished) every request has exactly one
  terminal event, the expected one, and a replay (projections.verify) matches the live read
  models.

Sizes (examples x steps; stateful_step_count is a cap, a ``requests`` step sends 1-3):
memory 50 x 40, SQLite 15 x 30, PostgreSQL 6 x 25, Redis hold store (memory events, second
projector) 20 x 30, other process (memory events, in-process holds, second projector)
25 x 30: 30-37 s together on this 2-core machine. Shrinking is off (a failing example
costs seconds and shrinking one took over 5 minutes); GATEWAYZ_SHRINK=1 turns it on locally.
Every example opens a fresh gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import _create_schema, _drop_schema, make_settings
from fakes.provider_port import (
    FakeProviderPort,
    connection_error,
    json_answer,
    status_answer,
    stream_answer,
    timeout_answer,
)
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from service.support import (
    DUO,
    SOLO,
    add_providers,
    cost,
    customer,
    estimated_tokens,
    install_port,
)

from adapters.clock import FrozenClock
from application.chat_request import parse_chat
from application.sweeper import HOLD_TTL, sweep_expired_holds
from domain import pools as spend
from domain.errors import DomainError
from domain.inference_request import InferenceRequest
from entrypoints.bootstrap import Gateway
from entrypoints.maintenance import sweep_once
from integration.support import POOLS, TERMINAL_TYPES, fold_pools, raw_events, stream_events
from projections.balances import BalanceQueries
from projections.runner import Projector
from projections.verify import verify


@dataclass(frozen=True)
class Variant:
    backend: str
    redis: bool
    other_projector: bool
    examples: int
    steps: int


VARIANTS = {
    "memory": Variant("memory", False, False, 50, 40),
    "sqlite": Variant("sqlite", False, False, 15, 30),
    "postgres": Variant("postgres", False, False, 6, 25),
    "redis": Variant("memory", True, True, 20, 30),
    "other-process": Variant("memory", False, True, 25, 30),
}
PROMPT = "Please answer the property test."
KINDS = ("json", "json_estimated", "failover", "all_fail", "rejected", "stream",
         "stream_estimated", "stream_broken", "stream_empty")
GRANTOR = "usr_property"


@contextmanager
def lagging_gateway(backend: str, directory, redis: bool) -> Iterator[Gateway]:
    """A gateway whose projector runs only when asked, in the caller's thread."""
    schema = None
    if backend == "postgres":
        schema = f"t_{uuid.uuid4().hex[:12]}"
        _create_schema(schema)
    settings_ = replace(make_settings(backend, directory, redis=redis, schema=schema),
                        run_projector=False)
    gateway = Gateway(settings_)
    try:
        gateway.start()
        yield gateway
    finally:
        with contextlib.suppress(Exception):
            if getattr(gateway.holds, "flush", None):
                gateway.holds.flush()
        gateway.close()
        if schema:
            _drop_schema(schema)


def reconcile_holds(gw: Gateway) -> None:
    """MARKED CHECK: the gateway's reconcile entry point (``gw.reconciler.reconcile_all``, what
    every maintenance sweep runs), called after projecting to idle, before the check that
    the hold store offers exactly what the read model does. The in-process store also
    reconciles by itself when its projector notices another process's progress."""
    gw.reconciler.reconcile_all()


def publisher_to(holds: Any, enabled=lambda: True):
    """What another process's projector does after each commit: publish the touched
    accounts' balances and the holds that batch ended to *its* hold store (unless
    ``enabled()`` says this publication is lost: Redis away, the process died)."""
    def after_commit(cur, effects):
        if not enabled():
            return None
        version = BalanceQueries.version(cur)
        snapshots = {a: BalanceQueries.snapshot(cur, a, version)
                     for a in effects.touched_accounts}

        def publish() -> None:
            for account_id, snapshot in snapshots.items():
                if snapshot is not None:
                    holds.publish(account_id, snapshot,
                                  effects.released_holds.get(account_id, []))
        return publish
    return after_commit


@dataclass
class Account:
    id: str
    principal: Any
    plan: str
    pools: dict[str, int]                        # truth: what the event store says
    open: dict[str, dict[str, int]] = field(default_factory=dict)  # no terminal event yet
    proj_pools: dict[str, int] = field(default_factory=dict)       # as last projected
    proj_open: dict[str, dict[str, int]] = field(default_factory=dict)
    hs_pools: dict[str, int] = field(default_factory=dict)         # the expected hold store
    hs_holds: dict[str, dict[str, int]] = field(default_factory=dict)
    hs_exact: bool = True  # False once another process projected this account's events
    allowance_active: bool = False
    payments: list[str] = field(default_factory=list)
    invoices: int = 0

    @property
    def trial_usable(self) -> bool:
        return self.plan == "trial"  # 14 days from opening: never over within an example

    def usable(self) -> dict[str, bool]:
        return {"trial": self.trial_usable, "allowance": self.allowance_active,
                "purchased": True}

    @staticmethod
    def reserved_of(holds: dict[str, dict[str, int]]) -> dict[str, int]:
        total = dict.fromkeys(POOLS, 0)
        for parts in holds.values():
            for pool in POOLS:
                total[pool] += parts.get(pool, 0)
        return total

    def free(self, balances: dict[str, int], holds: dict[str, dict[str, int]]) -> dict:
        reserved, usable = self.reserved_of(holds), self.usable()
        return {p: max(balances[p] - reserved[p], 0) if usable[p] else 0 for p in POOLS}

    def true_free(self) -> dict[str, int]:
        return self.free(self.pools, self.open)

    def hs_free(self) -> dict[str, int]:
        return self.free(self.hs_pools, self.hs_holds)


@dataclass
class OpenStream:
    account: Account
    request_id: str
    stream: Any
    reserved: dict[str, int]
    hold: int
    usage: tuple[int, int]
    received: list[bytes] = field(default_factory=list)
    finished: bool = False


def sse_events(raw: bytes) -> list:
    out = []
    for event in raw.split(b"\n\n"):
        if event.startswith(b"data: "):
            data = event[6:]
            out.append(data.decode() if data == b"[DONE]" else json.loads(data))
    return out


def delivered_content(events: list) -> str:
    return "".join(choice.get("delta", {}).get("content") or ""
                   for e in events if isinstance(e, dict) for choice in e.get("choices", []))


def ledger_machine(variant: Variant, directory) -> type[RuleBasedStateMachine]:
    examples = itertools.count()

    class Ledger(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self._context = lagging_gateway(variant.backend,
                                            directory / f"example-{next(examples)}",
                                            variant.redis)
            self.gw = self._context.__enter__()
            self.loop = asyncio.new_event_loop()
            try:
                add_providers(self.gw)
                self.port: FakeProviderPort = install_port(self.gw)
                self.other: Projector | None = None
                self.other_holds: Any = None
                if variant.other_projector:
                    if variant.redis:  # the other process shares this Redis
                        from adapters.holds_redis import RedisHoldStore

                        self.other_holds = RedisHoldStore(self.gw.settings.redis_url,
                                                          self.gw.settings.redis_prefix)
                    self.other = Projector(
                        self.gw.stores, self.gw.db,
                        after_commit=publisher_to(self.other_holds, lambda: self.publishing)
                        if self.other_holds is not None else None)
                self.publishing = True  # whether the other process's publications arrive
                self.lost_publications = False
            except BaseException:
                self.loop.close()
                self._context.__exit__(*sys.exc_info())
                raise
            self.accounts: list[Account] = []
            self.pending: list[tuple] = []  # model events written but not yet projected
            self.expected: dict[str, tuple[str, Account]] = {}  # request -> final outcome
            self.streams: dict[str, OpenStream] = {}

        # -- model helpers ----------------------------------------------------------------
        def run(self, coroutine):
            return self.loop.run_until_complete(coroutine)

        def projected(self, by_this_gateway: bool, published: bool = True) -> None:
            """The model side of a projector run to idle: everything pending is projected;
            this gateway's projector (or a shared Redis) also updates the hold store."""
            touched: dict[str, Account] = {}
            released: dict[str, list[str]] = {}
            for kind, account, *args in self.pending:
                touched[account.id] = account
                if kind == "pools":
                    pool, amount = args
                    account.proj_pools[pool] += amount
                elif kind == "placed":
                    request_id, reserved = args
                    account.proj_open[request_id] = reserved
                elif kind == "ended":
                    request_id, charged = args
                    account.proj_open.pop(request_id)
                    for pool in POOLS:
                        account.proj_pools[pool] -= charged.get(pool, 0)
                    released.setdefault(account.id, []).append(request_id)
            self.pending.clear()
            publishes_here = by_this_gateway or (self.other_holds is not None and published)
            for account in touched.values():
                if publishes_here:
                    account.hs_pools = dict(account.proj_pools)
                    for request_id in released.get(account.id, []):
                        account.hs_holds.pop(request_id, None)
                else:
                    account.hs_exact = False

        def by_id(self, index: int) -> Account:
            return self.accounts[index % len(self.accounts)]

        def credited(self, account: Account, pool: str, amount: int) -> None:
            account.pools[pool] += amount
            self.pending.append(("pools", account, pool, amount))

        def wait_for_writer(self) -> None:
            assert self.gw.writer.wait_idle(10)

        def request_events(self, request_id: str) -> list:
            return stream_events(self.gw.stores.requests, InferenceRequest.create_id(request_id))

        def check_placement(self, account: Account, request_id: str, error: Any,
                            received_before: int) -> tuple[int, dict] | None:
            """The hold of a request that just ran: (hold, reserved) or None if refused."""
            self.wait_for_writer()
            events = self.request_events(request_id)
            if not events:
                assert isinstance(error, DomainError), f"no hold recorded, yet {error!r}"
                assert error.code == "insufficient_credits", error.code
                assert len(self.port.received) == received_before, "a refused request was sent"
                required = error.details["required_micros"]
                if account.hs_exact:
                    free = account.hs_free()
                    assert spend.reserve(free, required) is None, \
                        f"refused {required} with {free} free in the hold store"
                    assert error.details["available_micros"] == sum(free.values())
                return None
            placed = events[0]
            assert placed.type == "InferenceRequest.HoldPlaced"
            hold = placed.data["hold_micros"]
            reserved = {p: placed.data["reserved_by_pool"].get(p, 0) for p in POOLS}
            assert sum(reserved.values()) == hold
            true_free = account.true_free()
            assert all(reserved[p] <= true_free[p] for p in POOLS), \
                f"reserved {reserved} beyond the true free {true_free}"
            if account.hs_exact:
                assert reserved == spend.reserve(account.hs_free(), hold), \
                    f"reserved {reserved}, expected from {account.hs_free()}"
            account.open[request_id] = reserved
            account.hs_holds[request_id] = reserved
            self.pending.append(("placed", account, request_id, reserved))
            return hold, reserved

        def check_end(self, account: Account, request_id: str, reserved: dict, *,
                      charge: int | None = None, reason: str | None = None,
                      provider: str | None = None, cost_micros: int | None = None) -> None:
            """The request's one terminal event is the expected one; move the model."""
            self.wait_for_writer()
            events = self.request_events(request_id)
            assert [e.type for e in events][:1] == ["InferenceRequest.HoldPlaced"]
            ends = [e for e in events if e.type in TERMINAL_TYPES]
            assert len(ends) == 1, [e.type for e in events]
            end = ends[0]
            account.open.pop(request_id)
            if charge is None:
                assert end.type == "InferenceRequest.HoldVoided", end
                if reason is not None:
                    assert end.data["reason"] == reason, end.data
                charged = dict.fromkeys(POOLS, 0)
                self.expected[request_id] = ("HoldVoided", account)
            else:
                assert end.type == "InferenceRequest.HoldSettled", end
                charged = spend.settle(reserved, charge)
                assert end.data["charged_micros"] == charge, (end.data, charge)
                assert {p: end.data["charged_by_pool"].get(p, 0) for p in POOLS} == charged
                if provider is not None:
                    assert end.data["provider"] == provider
                if cost_micros is not None:
                    assert end.data["cost_micros"] == cost_micros
                    assert end.data["uncollected_micros"] == cost_micros - charge
                self.expected[request_id] = ("HoldSettled", account)
            for pool in POOLS:
                account.pools[pool] -= charged[pool]
            self.pending.append(("ended", account, request_id, charged))

        def request(self, model: str, max_tokens: int, stream: bool, n: int = 1) -> Any:
            body = {"model": model, "messages": [{"role": "user", "content": PROMPT}],
                    "max_tokens": max_tokens}
            if n > 1:
                body["n"] = n
            if stream:
                body |= {"stream": True, "stream_options": {"include_usage": True}}
            return parse_chat(body)

        # -- set-up -----------------------------------------------------------------------
        @initialize(plans=st.lists(st.sampled_from(["trial", "dev", "team"]), min_size=2,
                                   max_size=3))
        def open_accounts(self, plans: list[str]) -> None:
            for plan in plans:
                account_id, principal = customer(self.gw, plan)
                start = dict.fromkeys(POOLS, 0)
                if plan == "trial":
                    start["trial"] = 5_000_000
                self.accounts.append(Account(account_id, principal, plan, dict(start),
                                             proj_pools=dict(start), hs_pools=dict(start)))

        # -- money in ---------------------------------------------------------------------
        @rule(who=st.integers(0, 2), data=st.data(), grant=st.booleans())
        def credit(self, who: int, data, grant: bool) -> None:
            """An admin grant or a purchase (a repeated payment id is not applied twice);
            the command's read-your-writes wait runs this gateway's projector."""
            account = self.by_id(who)
            if grant:
                amount = data.draw(st.integers(1, 20_000_000), label="grant")
                self.gw.accounts.grant_credits(account.id, amount, "property test grant",
                                               GRANTOR)
                self.credited(account, "purchased", amount)
                self.projected(True)
                return
            cents = data.draw(st.integers(1, 2_000), label="cents")
            if account.payments and data.draw(st.booleans(), label="repeat"):
                assert self.gw.accounts.credit_purchase(account.id, account.payments[0], cents,
                                                        "repeat", "stripe") is False
                return
            payment_id = f"pi_{account.id}_{len(account.payments)}"
            assert self.gw.accounts.credit_purchase(account.id, payment_id, cents, "custom",
                                                    "stripe") is True
            account.payments.append(payment_id)
            self.credited(account, "purchased", cents * 10_000)
            self.projected(True)

        @rule(who=st.integers(0, 2), amount=st.integers(0, 3_000_000))
        def reset_allowance(self, who: int, amount: int) -> None:
            """A renewal forfeits the unused allowance (balance minus the reservations of
            holds with no terminal event) and sets the plan amount.

            The figure comes from the facts, not the lagging read model: a hold whose
            HoldPlaced is not projected yet is missing from the read model's reservations,
            so forfeiting "balance minus projected reservations" can forfeit allowance that
            hold still reserves, and its settlement then drives the pool negative:
            AccountService.reset_allowance trusts the caller's figure."""
            account = self.by_id(who)
            unused = max(account.pools["allowance"]
                         - Account.reserved_of(account.open)["allowance"], 0)
            account.invoices += 1
            assert self.gw.accounts.reset_allowance(account.id, "team",
                                                    f"in_{account.invoices}", amount,
                                                    unused) is True
            account.allowance_active = True
            self.credited(account, "allowance", amount - unused)
            self.projected(True)

        # -- inference --------------------------------------------------------------------
        @rule(data=st.data(), count=st.integers(1, 3))
        def requests(self, data, count: int) -> None:
            """One to three inference requests, one after the other (the read model lags)."""
            for _ in range(count):
                self.infer(
                    data.draw(st.integers(0, 2), label="who"), data,
                    data.draw(st.sampled_from(KINDS), label="kind"),
                    data.draw(st.one_of(st.integers(1, 2_000), st.integers(1, 1_000_000)),
                              label="max_tokens"),
                    data.draw(st.sampled_from([1, 1, 1, 2, 4]), label="n"))

        def infer(self, who: int, data, kind: str, max_tokens: int, n: int) -> None:
            account = self.by_id(who)
            prompt = data.draw(st.integers(0, 300), label="prompt_tokens")
            most = n * max_tokens  # what the hold covers; usage may go past it
            completion = data.draw(st.one_of(st.integers(0, most),
                                             st.integers(most, 3 * most + 50)),
                                   label="completion_tokens")
            words = [f"w{i} " for i in range(data.draw(st.integers(1, 6), label="words"))]
            text = "".join(words)
            stream = kind.startswith("stream")
            model = DUO if kind in ("failover", "all_fail") else SOLO
            self.port.reset()
            if kind == "json":
                self.port.will(json_answer(text, prompt_tokens=prompt,
                                           completion_tokens=completion))
            elif kind == "json_estimated":
                self.port.will(json_answer(text, prompt_tokens=None))
            elif kind == "failover":
                first = data.draw(st.sampled_from([status_answer(500), status_answer(429),
                                                   connection_error(), timeout_answer()]),
                                  label="first")
                self.port.will(first, provider="alpha")
                self.port.will(json_answer(text, prompt_tokens=prompt,
                                           completion_tokens=completion), provider="beta")
            elif kind == "all_fail":
                self.port.will(status_answer(500), provider="alpha")
                self.port.will(status_answer(503), provider="beta")
            elif kind == "rejected":
                self.port.will(status_answer(400, "bad request"))
            elif kind == "stream":
                self.port.will(stream_answer(words, usage=(prompt, completion)))
            elif kind == "stream_estimated":
                self.port.will(stream_answer(words, usage=None))
            elif kind == "stream_broken":
                self.port.will(stream_answer(words, usage=(prompt, completion),
                                             break_after=data.draw(
                                                 st.integers(0, len(words) + 1),
                                                 label="break_after")))
            else:
                self.port.will(stream_answer([], usage=None))
            request_id = f"req_{uuid.uuid4().hex}"
            received_before = len(self.port.received)
            error: Any = None
            try:
                response = self.run(self.gw.inference.chat(
                    request_id, self.request(model, max_tokens, stream, n), account.principal))
                if stream:
                    raw = self.run(_consume(response.stream))
                    events = sse_events(raw)
                    if kind in ("stream", "stream_estimated"):
                        assert events[-1] == "[DONE]" and delivered_content(events) == text
            except DomainError as refused:
                error = refused
            placed = self.check_placement(account, request_id, error, received_before)
            if placed is None:
                return
            hold, reserved = placed
            if kind in ("json", "stream"):
                full = cost("alpha", prompt, completion)
                self.check_end(account, request_id, reserved, charge=min(full, hold),
                               provider="alpha", cost_micros=full)
            elif kind == "failover":
                full = cost("beta", prompt, completion)
                self.check_end(account, request_id, reserved, charge=min(full, hold),
                               provider="beta", cost_micros=full)
            elif kind in ("json_estimated", "stream_estimated"):
                full = cost("alpha", estimated_tokens(PROMPT), estimated_tokens(text))
                self.check_end(account, request_id, reserved, charge=min(full, hold),
                               cost_micros=full)
            elif kind == "all_fail":
                assert error is not None and error.code == "provider_error"
                self.check_end(account, request_id, reserved, reason="provider_error")
            elif kind == "rejected":
                assert error is not None and error.code == "invalid_request"
                self.check_end(account, request_id, reserved, reason="rejected")
            elif kind == "stream_broken":
                self.check_end(account, request_id, reserved, reason="provider_error")
            else:
                self.check_end(account, request_id, reserved, reason="empty_stream")
            assert error is None or kind in ("all_fail", "rejected"), error

        @precondition(lambda self: len(self.streams) < 3)
        @rule(who=st.integers(0, 2), data=st.data(),
              max_tokens=st.one_of(st.integers(1, 2_000), st.integers(1, 1_000_000)))
        def start_a_stream(self, who: int, data, max_tokens: int) -> None:
            """A stream the client reads partly, left open across steps."""
            account = self.by_id(who)
            prompt = data.draw(st.integers(0, 300), label="prompt_tokens")
            completion = data.draw(st.integers(0, 3 * max_tokens + 50), label="completion")
            words = [f"w{i} " for i in range(data.draw(st.integers(1, 6), label="words"))]
            answer = stream_answer(words, usage=(prompt, completion))
            read = data.draw(st.integers(1, len(answer.chunks)), label="events_read")
            self.port.reset()
            self.port.will(answer)
            request_id = f"req_{uuid.uuid4().hex}"
            received_before = len(self.port.received)
            error: Any = None
            try:
                response = self.run(self.gw.inference.chat(
                    request_id, self.request(SOLO, max_tokens, True), account.principal))
            except DomainError as refused:
                error = refused
            placed = self.check_placement(account, request_id, error, received_before)
            if placed is None:
                return
            assert error is None
            hold, reserved = placed
            opened = OpenStream(account, request_id, response.stream, reserved, hold,
                                (prompt, completion))
            for _ in range(read):
                opened.received.append(self.run(opened.stream.__anext__()))
            self.streams[request_id] = opened

        def close_stream(self, opened: OpenStream, finish: bool) -> None:
            del self.streams[opened.request_id]
            account, request_id = opened.account, opened.request_id
            if finish:
                opened.received += self.run(_collect(opened.stream))
            else:
                self.run(opened.stream.aclose())  # the client went away
            if request_id not in account.open:  # the sweeper expired it meanwhile
                self.wait_for_writer()
                types = [e.type for e in self.request_events(request_id)]
                assert types == ["InferenceRequest.HoldPlaced",
                                 "InferenceRequest.HoldExpired"], types
                return
            events = sse_events(b"".join(opened.received))
            prompt, completion = opened.usage
            usage_seen = any(isinstance(e, dict) and e.get("usage") for e in events)
            content = delivered_content(events)
            if not finish and not content:
                self.check_end(account, request_id, opened.reserved,
                               reason="cancelled_before_output")
                return
            if finish or usage_seen:
                full = cost("alpha", prompt, completion)
            else:
                full = cost("alpha", estimated_tokens(PROMPT), estimated_tokens(content))
            self.check_end(account, request_id, opened.reserved,
                           charge=min(full, opened.hold), cost_micros=full)

        @precondition(lambda self: self.streams)
        @rule(data=st.data(), finish=st.booleans())
        def end_a_stream(self, data, finish: bool) -> None:
            request_id = data.draw(st.sampled_from(sorted(self.streams)), label="stream")
            self.close_stream(self.streams[request_id], finish)

        # -- background work --------------------------------------------------------------
        @rule()
        def sweep_as_if_the_ttl_passed(self) -> None:
            """The sweeper sees the read model: holds it shows open past the TTL expire,
            unless their terminal event is already in the store (not yet projected)."""
            later = FrozenClock(datetime.now(UTC) + HOLD_TTL + timedelta(seconds=5))
            expected = [(a, r) for a in self.accounts for r in a.proj_open if r in a.open]
            expired = sweep_expired_holds(self.gw.stores.requests,
                                          self.gw.balances.expired_holds, later)
            assert expired == len(expected)
            for account, request_id in expected:
                reserved = account.open.pop(request_id)
                assert reserved is not None
                self.expected[request_id] = ("HoldExpired", account)
                self.pending.append(("ended", account, request_id, dict.fromkeys(POOLS, 0)))

        @rule()
        def project(self) -> None:
            """This gateway's projector runs to idle. Its own publications (and, in process,
            the reconcile it runs when it sees another process's progress) must already make
            the hold store agree with the read model; a lost Redis publication is repaired
            only by reconciliation, which runs next and must leave everything agreeing."""
            self.gw.projector.run_until_idle()
            self.projected(True)
            if not self.lost_publications:
                self.check_projected_to_idle("after projecting, before reconciling")
            reconcile_holds(self.gw)
            self.check_projected_to_idle("after projecting and reconciling")
            self.lost_publications = False

        @precondition(lambda self: self.other is not None)
        @rule(published=st.booleans())
        def project_elsewhere(self, published: bool) -> None:
            """Another process projects; with Redis its publications reach the shared store
            unless lost (``published`` False), which only reconciliation repairs."""
            assert self.other is not None
            self.publishing = published
            if self.other_holds is not None:  # in process, nothing could reach us anyway
                self.lost_publications |= not published and bool(self.pending)
            self.other.run_until_idle()
            self.projected(False, published=published)

        @rule()
        def maintenance_sweep(self) -> None:
            """The worker's periodic pass (entrypoints/maintenance.py): expire past the TTL
            (none: real time), void dead workers' holds (none: this worker beats), reconcile
            the hold store against a possibly lagging read model, which must free nothing."""
            done = sweep_once(self.gw)
            assert (done["expired"], done["voided"]) == (0, 0), done

        # -- checks -----------------------------------------------------------------------
        def check_projected_to_idle(self, when: str) -> None:
            """After this gateway projected to idle: read model == truth == fold of the
            events, and the hold store offers exactly what the read model does."""
            now = int(time.time())
            for account in self.accounts:
                view = self.gw.balances.balance(account.id, now)
                projected = {p: view["pools"][p]["balance_micros"] for p in POOLS}
                assert projected == account.pools
                assert fold_pools(self.gw, account.id) == account.pools
                reserved = Account.reserved_of(account.open)
                assert {p: view["pools"][p]["reserved_micros"] for p in POOLS} == reserved
                assert view["open_holds"] == len(account.open)
                from projections.ledger_queries import LedgerQueries, PageRequest
                lines = LedgerQueries(self.gw.db).page(account.id, PageRequest(limit=1000))["data"]
                assert sum(line["amount_micros"] for line in lines) == sum(account.pools.values())
                in_store = self.gw.holds.available(account.id, now)
                if in_store is None:  # not loaded (or forgotten while idle): reloads on use
                    assert not account.open, f"open holds of {account.id} not in the store"
                    account.hs_pools, account.hs_holds = dict(account.pools), {}
                    account.hs_exact = True
                    continue
                assert in_store == view["available_micros"], (
                    f"{when}: hold store offers {in_store}, read model "
                    f"{view['available_micros']} for {account.id}"
                    + ("" if account.hs_exact else " (another process projected its events; "
                       "their hold releases did not reach this hold store)"))
                cached = getattr(self.gw.holds, "cached_holds", None)
                if cached is not None:  # totals can agree by chance (a charge == its hold)
                    assert sorted(cached(account.id)) == sorted(account.open), \
                        f"{when}: hold store keeps {sorted(cached(account.id))}, open " \
                        f"holds are {sorted(account.open)} for {account.id}"
                # Agreement proven: the expected hold store is the truth again.
                account.hs_pools, account.hs_holds = dict(account.pools), dict(account.open)
                account.hs_exact = True

        @invariant()
        def no_pool_is_ever_negative(self) -> None:
            for account in self.accounts:
                assert all(v >= 0 for v in account.pools.values()), account.pools
                assert all(v >= 0 for v in account.proj_pools.values()), account.proj_pools

        @invariant()
        def the_read_model_equals_the_model_as_last_projected(self) -> None:
            now = int(time.time())
            for account in self.accounts:
                view = self.gw.balances.balance(account.id, now)
                assert {p: view["pools"][p]["balance_micros"] for p in POOLS} == \
                    account.proj_pools
                assert {p: view["pools"][p]["reserved_micros"] for p in POOLS} == \
                    Account.reserved_of(account.proj_open)
                assert view["open_holds"] == len(account.proj_open)
                assert view["available_micros"] == \
                    sum(account.free(account.proj_pools, account.proj_open).values())

        @invariant()
        def the_hold_store_never_offers_more_than_the_truth(self) -> None:
            now = int(time.time())
            for account in self.accounts:
                in_store = self.gw.holds.available(account.id, now)
                if in_store is None:
                    continue
                assert in_store <= sum(account.true_free().values())
                if account.hs_exact:
                    assert in_store == sum(account.hs_free().values()), (
                        f"hold store offers {in_store} for {account.id}; expected pools "
                        f"{account.hs_pools} minus holds {account.hs_holds}")

        def teardown(self) -> None:
            try:
                if sys.exc_info()[0] is None and self.accounts:
                    for opened in list(self.streams.values()):
                        self.close_stream(opened, finish=True)
                    self.wait_for_writer()
                    self.project()
                    self.check_every_request_ended_once()
                    reports = verify(self.gw.config, self.gw.stores, self.gw.db)
                    assert [r.table for r in reports if not r.match] == [], \
                        [r.first_difference for r in reports if not r.match]
            finally:
                for opened in list(self.streams.values()):
                    with contextlib.suppress(BaseException):
                        self.run(opened.stream.aclose())
                with contextlib.suppress(BaseException):
                    self.loop.run_until_complete(self.loop.shutdown_asyncgens())
                self.loop.close()
                self._context.__exit__(None, None, None)

        def check_every_request_ended_once(self) -> None:
            streams: dict[Any, list[str]] = {}
            for event in raw_events(self.gw.stores.requests):
                streams.setdefault(event.stream, []).append(event.type)
            assert len(streams) == len(self.expected)
            for request_id, (ending, _) in self.expected.items():
                types = streams[InferenceRequest.create_id(request_id)]
                assert types == ["InferenceRequest.HoldPlaced", f"InferenceRequest.{ending}"], \
                    (request_id, types)

    return Ledger


async def _consume(stream) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def _collect(stream) -> list[bytes]:
    return [chunk async for chunk in stream]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_random_money_commands_and_requests_keep_every_balance_equal_to_its_events(
        name, tmp_path):
    variant = VARIANTS[name]
    phases = list(Phase) if os.environ.get("GATEWAYZ_SHRINK") else \
        [p for p in Phase if p is not Phase.shrink]
    run_state_machine_as_test(
        ledger_machine(variant, tmp_path),
        settings=settings(max_examples=variant.examples, stateful_step_count=variant.steps,
                          deadline=None, phases=phases,
                          suppress_health_check=[HealthCheck.too_slow]))
