"""Building blocks of the ledger state machine (test_ledger_state_machine.py): its constants,
the gateway it runs against, the exact per-account model, and the model-side helpers.

``Account`` keeps the exact pools and open holds (the event store's truth), the same as last
projected (what the read model must show), and the hold store it expects. ``LedgerModel`` is
mixed into the machine: it moves that model as events are written and projected. It uses the
machine's state set in its ``__init__``: ``gw``, ``loop``, ``accounts``, ``pending`` (model
events written but not yet projected) and ``other_holds``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from conftest import _create_schema, _drop_schema, make_settings

from application.chat_request import parse_chat
from domain.inference_request import InferenceRequest
from entrypoints.bootstrap import Gateway
from integration.support import POOLS, stream_events
from projections.balances import BalanceQueries

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


class LedgerModel:
    """The model side of the machine, and how it reaches the gateway."""

    # -- model helpers --------------------------------------------------------------------
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

    def request(self, model: str, max_tokens: int, stream: bool, n: int = 1) -> Any:
        body = {"model": model, "messages": [{"role": "user", "content": PROMPT}],
                "max_tokens": max_tokens}
        if n > 1:
            body["n"] = n
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        return parse_chat(body)
