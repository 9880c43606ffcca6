"""In-process hold store for the embedded single node: one lock, exact integer arithmetic."""

from __future__ import annotations

import threading

from application.ports import BalanceSnapshot, HoldOutcome
from domain import pools


class InProcessHoldStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._balances: dict[str, BalanceSnapshot] = {}
        self._holds: dict[str, dict[str, dict[str, int]]] = {}

    def _free(self, account_id: str, now_epoch: int) -> dict[str, int] | None:
        snap = self._balances.get(account_id)
        if snap is None:
            return None
        reserved = pools.empty()
        for parts in self._holds.get(account_id, {}).values():
            for pool, amount in parts.items():
                reserved[pool] += amount
        usable = {"trial": snap.trial_ends_epoch > now_epoch,
                  "allowance": snap.allowance_active, "purchased": True}
        return {pool: max(snap.pools[pool] - reserved[pool], 0) if usable[pool] else 0
                for pool in pools.POOLS}

    def place(self, account_id: str, hold_id: str, amount: int, now_epoch: int) -> HoldOutcome:
        with self._lock:
            free = self._free(account_id, now_epoch)
            if free is None:
                return HoldOutcome("unknown_account")
            taken = pools.reserve(free, amount)
            if taken is None:
                return HoldOutcome("insufficient", available=sum(free.values()))
            self._holds.setdefault(account_id, {})[hold_id] = taken
            return HoldOutcome("reserved", reserved_by_pool=taken)

    def cancel(self, account_id: str, hold_id: str) -> None:
        with self._lock:
            self._holds.get(account_id, {}).pop(hold_id, None)

    def publish(self, account_id: str, snapshot: BalanceSnapshot,
                released_holds: list[str]) -> None:
        with self._lock:
            current = self._balances.get(account_id)
            if current is None or snapshot.version >= current.version:
                self._balances[account_id] = snapshot
            holds = self._holds.setdefault(account_id, {})
            for hold_id in released_holds:
                holds.pop(hold_id, None)

    def seed(self, account_id: str, snapshot: BalanceSnapshot) -> None:
        with self._lock:
            if account_id in self._balances:
                return
            self._balances[account_id] = snapshot
            self._holds.setdefault(account_id, dict(snapshot.open_holds))

    def stale_holds(self, placed_before_epoch: int) -> list[tuple[str, str]]:
        """Nothing to sweep: in-process holds die with the process that placed them."""
        return []

    def available(self, account_id: str, now_epoch: int) -> int | None:
        with self._lock:
            free = self._free(account_id, now_epoch)
        return None if free is None else sum(free.values())
