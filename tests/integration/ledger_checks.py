"""The checks of the ledger state machine (test_ledger_state_machine.py), mixed into it: each
placement and terminal event against the model, the state after projecting to idle, the
invariants checked after every step, and the one-terminal-event-per-request check at teardown.
"""

from __future__ import annotations

import time
from typing import Any

from hypothesis.stateful import invariant

from domain import pools as spend
from domain.errors import DomainError
from domain.inference_request import InferenceRequest
from integration.ledger_model import Account, LedgerModel
from integration.support import POOLS, TERMINAL_TYPES, fold_pools, raw_events


class LedgerChecks(LedgerModel):
    """Assertions of the machine; the ones that pass also move the model (placement, end)."""

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

    # -- checks ---------------------------------------------------------------------------
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

    def check_every_request_ended_once(self) -> None:
        streams: dict[Any, list[str]] = {}
        for event in raw_events(self.gw.stores.requests):
            streams.setdefault(event.stream, []).append(event.type)
        assert len(streams) == len(self.expected)
        for request_id, (ending, _) in self.expected.items():
            types = streams[InferenceRequest.create_id(request_id)]
            assert types == ["InferenceRequest.HoldPlaced", f"InferenceRequest.{ending}"], \
                (request_id, types)
