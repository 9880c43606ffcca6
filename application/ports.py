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
    status: str  # "reserved", "insufficient" or "unknown_account"
    reserved_by_pool: dict[str, int] | None = None
    available: int = 0


class HoldStoreUnavailable(Exception):
    """The shared hold store cannot be reached; money must not move without it."""


class HoldStore(Protocol):
    """Atomic check-and-reserve against projected balance minus open holds (6.4)."""

    def place(self, account_id: str, hold_id: str, amount: int, now_epoch: int) -> HoldOutcome: ...
    def cancel(self, account_id: str, hold_id: str) -> None: ...
    def publish(self, account_id: str, snapshot: BalanceSnapshot,
                released_holds: list[str]) -> None: ...
    def seed(self, account_id: str, snapshot: BalanceSnapshot) -> None: ...
    def available(self, account_id: str, now_epoch: int) -> int | None: ...
    def stale_holds(self, placed_before_epoch: int) -> list[tuple[str, str]]: ...


@dataclass(frozen=True)
class IdempotencyClaim:
    state: str  # "new", "in_progress", "done", "mismatch"
    status: int = 0
    content_type: str = ""
    body: str = ""


class IdempotencyStore(Protocol):
    def claim(self, scope: str, key: str, body_hash: str) -> IdempotencyClaim: ...
    def complete(self, scope: str, key: str, status: int, content_type: str, body: str) -> None: ...
    def release(self, scope: str, key: str) -> None: ...


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


class UpstreamResponse(Protocol):
    status: int
    headers: dict[str, str]

    def chunks(self) -> AsyncIterator[bytes]: ...
    async def read(self) -> bytes: ...
    def close(self) -> None: ...


class ProviderClient(Protocol):
    async def send(self, target: ProviderTarget, path: str, body: bytes) -> UpstreamResponse: ...
