"""Ports: the protocols that adapters implement for the use cases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class BalanceSnapshot:
    """An account's projected pools at one projection state, for the hold store.

    ``version`` grows with every projector commit, so an older snapshot never overwrites
    a newer one, whichever process publishes it.
    """

    pools: dict[str, int]
    trial_ends_epoch: int  # 0 = no trial pool usable
    allowance_active: bool
    version: int
    open_holds: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class HoldOutcome:
    status: str  # "reserved", "insufficient", "unknown_account" or "duplicate" (id in use)
    reserved_by_pool: dict[str, int] | None = None
    available: int = 0


class HoldStoreUnavailable(Exception):
    """The shared hold store cannot be reached; money must not move without it."""


class HoldStore(Protocol):
    """Atomic check-and-reserve against projected balance minus open holds (6.4).

    A cache of durable facts: every reservation it keeps is either an open hold in the event
    store or one a live worker is about to record. ``reconcile`` makes it agree with the
    facts (application/hold_reconciler.py), whichever process projected them.
    """

    def place(self, account_id: str, hold_id: str, amount: int, now_epoch: int,
              worker_id: str = "") -> HoldOutcome: ...
    def cancel(self, account_id: str, hold_id: str) -> None: ...
    def publish(self, account_id: str, snapshot: BalanceSnapshot,
                released_holds: list[str]) -> None: ...
    def reconcile(self, account_id: str, snapshot: BalanceSnapshot, release: list[str],
                  add: dict[str, dict[str, int]]) -> None: ...
    def cached_holds(self, account_id: str) -> dict[str, CachedHold]: ...
    def accounts(self) -> list[str]: ...  # those with reservations
    def forget_idle(self) -> None: ...  # drop balances another process may have moved
    def available(self, account_id: str, now_epoch: int) -> int | None: ...


@dataclass(frozen=True)
class CachedHold:
    """One reservation as the hold store keeps it."""

    parts: dict[str, int]
    placed_epoch: int
    worker_id: str


class WorkerRegistry(Protocol):
    """Which gateway worker instances are alive (heartbeats), so the holds of a dead one can
    be voided promptly and those of a live one never are."""

    worker_id: str

    def beat(self) -> None: ...
    def alive(self, worker_id: str) -> bool: ...


@dataclass(frozen=True)
class IdempotencyClaim:
    state: str  # "new" (ours to run), "in_progress", "done", "mismatch", "unknown"
    status: int = 0
    content_type: str = ""
    body: str = ""
    attempt: int = 0  # of a "new" claim: 0, then + 1 per takeover, release or expiry


class IdempotencyStore(Protocol):
    """Records per (scope, key); see application/idempotency.py for the states. Every call
    after ``claim`` names the claim's attempt, so a claim taken over by another worker is
    never completed or released by the one that lost it."""

    def claim(self, scope: str, key: str, body_hash: str) -> IdempotencyClaim: ...
    def complete(self, scope: str, key: str, status: int, content_type: str, body: str, *,
                 attempt: int) -> bool: ...
    def release(self, scope: str, key: str, *, attempt: int) -> None: ...
    def abandon(self, scope: str, key: str, *, attempt: int) -> None: ...
    def counted(self, scope: str, key: str) -> bool: ...


class PersonalDataCipher(Protocol):
    def encrypt(self, plaintext: str) -> str: ...
    def decrypt(self, ciphertext: str) -> str: ...


@dataclass(frozen=True)
class ProviderTarget:
    slug: str
    base_url: str
    protocol: str
    allow_private: bool
    timeout_ms: int
    credential: str
    native_model_id: str
    # Seconds left of the request cap (6.4): the whole attempt, streamed body included,
    # must end by then, before the hold's TTL can expire it.
    total_timeout_s: float | None = None


class UpstreamResponse(Protocol):
    status: int
    headers: dict[str, str]

    def chunks(self) -> AsyncIterator[bytes]: ...
    async def read(self) -> bytes: ...
    def close(self) -> None: ...


class ProviderClient(Protocol):
    """Sends one request to a provider. ``headers`` are the protocol's extra request headers
    (``anthropic-version``, ``anthropic-beta``); the client adds authentication itself, in
    the form ``target.protocol`` requires."""

    async def send(self, target: ProviderTarget, path: str, body: bytes,
                   headers: dict[str, str] | None = None) -> UpstreamResponse: ...
