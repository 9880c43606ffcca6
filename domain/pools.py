"""Balance pools and the spend order trial -> allowance -> purchased (spec 6.3)."""

from __future__ import annotations

POOLS: tuple[str, ...] = ("trial", "allowance", "purchased")


def empty() -> dict[str, int]:
    return {pool: 0 for pool in POOLS}


def reserve(free_by_pool: dict[str, int], amount: int) -> dict[str, int] | None:
    """Split ``amount`` across pools in spend order, or None when the pools cannot cover it."""
    if amount < 0:
        raise ValueError("amount must be >= 0")
    taken = empty()
    remaining = amount
    for pool in POOLS:
        take = min(max(free_by_pool.get(pool, 0), 0), remaining)
        taken[pool] = take
        remaining -= take
    return taken if remaining == 0 else None


def settle(reserved_by_pool: dict[str, int], charged: int) -> dict[str, int]:
    """Charge from a hold's reservation in spend order; never more than reserved."""
    charged_by_pool = empty()
    remaining = charged
    for pool in POOLS:
        take = min(reserved_by_pool.get(pool, 0), remaining)
        charged_by_pool[pool] = take
        remaining -= take
    if remaining:
        raise ValueError("charge exceeds the reservation")
    return charged_by_pool
