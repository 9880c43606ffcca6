"""Which events enter the audit trail, and how each is named and summarised there (11.6).

Audited: every event caused by a command, every security event, every event that moves
money in a wallet, every settlement that charged something, every Stripe-driven event. In
this codebase that is every event except the request path's own bookkeeping: a hold placed,
voided or expired, and a settlement that charged nothing (they move no money; the wallet
events and paid settlements do). The offline verifier applies the same rule independently.
"""

from __future__ import annotations

import re
from typing import Any

_NOT_AUDITED = frozenset({"Request.HoldPlaced", "Request.HoldVoided", "Request.HoldExpired"})
# A settlement's summary keeps the money and what it paid for; the attempt log and price
# snapshot stay in the event.
_SETTLEMENT_SUMMARY = ("charged_micros", "cost_micros", "uncollected_micros",
                       "charged_by_pool", "provider", "served_model", "tokens",
                       "token_source")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def audited(event_type: str, data: dict[str, Any]) -> bool:
    if event_type in _NOT_AUDITED:
        return False
    if event_type == "Request.HoldSettled":
        return data.get("charged_micros", 0) != 0
    return True


def action(event_type: str) -> str:
    """``Wallet.AdminCreditGranted`` -> ``wallet.admin_credit_granted``."""
    aggregate, _, name = event_type.partition(".")
    return f"{aggregate.lower()}.{_CAMEL.sub('_', name).lower()}"


def summary(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """Amounts and before/after values; personal fields stay as the ciphertext they are."""
    if event_type == "Request.HoldSettled":
        return {k: data[k] for k in _SETTLEMENT_SUMMARY if k in data}
    return dict(data)
