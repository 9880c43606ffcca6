"""In-process hold store for the embedded single node: one lock, exact integer arithmetic.

It lives and dies with the serving process; after a restart it is rebuilt from the event
store by the reconciler (application/hold_reconciler.py), never trusted across processes.
"""

from __future__ import annotations

import threading

from application.ports import BalanceSnapshot, CachedHold, HoldOutcome
from domain import pools


class InProcessHoldStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._balances: dict[str, BalanceSnapshot] = {}
        self._holds: dict[str, dict[str, CachedHold]] = {}

    def _free(self, account_id: str, now_epoch: int) -> dict[str, int] | None:
        snap = self._balances.get(account_id)
        if snap is None:
            return None
        reserved = pools.empty()
        for hold in self._holds.get(account_id, {}).values():
            for pool, amount in hold.parts.items():
                reserved[pool] += amount
        usable = {"trial": snap.trial_ends_epoch > now_epoch,
                  "allowance": snap.allowance_active, "purchased": True}
        return {pool: max(snap.pools[pool] - reserved[pool], 0) if usable[pool] else 0
                for pool in pools.POOLS}

    def place(self, account_id: str, hold_id: str, amount: int, now_epoch: int,
              worker_id: str = "") -> HoldOutcome:
        with self._lock:
            free = self._free(account_id, now_epoch)
            if free is None:
                return HoldOutcome("unknown_account")
            if hold_id in self._holds.get(account_id, {}):
                return HoldOutcome("duplicate")
            taken = pools.reserve(free, amount)
            if taken is None:
                return HoldOutcome("insufficient", available=sum(free.values()))
            self._holds.setdefault(account_id, {})[hold_id] = CachedHold(taken, now_epoch,
                                                                         worker_id)
            return HoldOutcome("reserved", reserved_by_pool=taken)

    def cancel(self, account_id: str, hold_id: str) -> None:
        with self._lock:
            self._holds.get(account_id, {}).pop(hold_id, None)

    def publish(self, account_id: str, snapshot: BalanceSnapshot,
                released_holds: list[str]) -> None:
        """A projector commit: newer pools and the holds that batch ended. An account this
        store has not loaded yet is left alone: loading it is the reconciler's job, with
        its open holds, never a balance without reservations."""
        with self._lock:
            holds = self._holds.get(account_id, {})
            for hold_id in released_holds:
                holds.pop(hold_id, None)
            current = self._balances.get(account_id)
            if current is not None and snapshot.version >= current.version:
                self._balances[account_id] = snapshot

    def reconcile(self, account_id: str, snapshot: BalanceSnapshot, release: list[str],
                  add: dict[str, dict[str, int]]) -> None:
        with self._lock:
            holds = self._holds.setdefault(account_id, {})
            for hold_id in release:
                holds.pop(hold_id, None)
            current = self._balances.get(account_id)
            if current is not None and snapshot.version < current.version:
                return  # a newer publication won; the holds it knew are already right
            for hold_id, parts in add.items():
                holds.setdefault(hold_id, CachedHold(dict(parts), 0, ""))
            self._balances[account_id] = snapshot

    def cached_holds(self, account_id: str) -> dict[str, CachedHold]:
        with self._lock:
            return dict(self._holds.get(account_id, {}))

    def accounts(self) -> list[str]:
        """Accounts with reservations: the ones a reconciliation pass must look at."""
        with self._lock:
            return sorted(a for a, h in self._holds.items() if h)

    def forget_idle(self) -> None:
        """Drop the balances of accounts with no reservation: another process projected and
        they may be stale; the next request reloads each from durable facts."""
        with self._lock:
            for account_id in [a for a in self._balances if not self._holds.get(a)]:
                del self._balances[account_id]

    def available(self, account_id: str, now_epoch: int) -> int | None:
        with self._lock:
            free = self._free(account_id, now_epoch)
        return None if free is None else sum(free.values())
