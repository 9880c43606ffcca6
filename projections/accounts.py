"""Accounts read model: plan, suspension and erasure per account."""

from __future__ import annotations

from typing import Any

from adapters.data_keys import destroy_key
from projections.base import BatchEffects, at, event_type, index_stream, ref_of


class AccountsProjection:
    name = "accounts"
    contexts = ("accounts",)

    def apply(self, cur: Any, event: Any, effects: BatchEffects) -> None:
        kind = event_type(event)
        if kind == "Account.Opened":
            index_stream(cur, event, event.account_id)
            cur.execute("INSERT INTO accounts (account_id, plan, origin, suspended, opened_at) "
                        "VALUES (%s, %s, %s, 0, %s) ON CONFLICT DO NOTHING",
                        (event.account_id, event.plan, event.origin,
                         at(event)))
        elif kind in ("Account.Suspended", "Account.Reinstated"):
            cur.execute("UPDATE accounts SET suspended = %s WHERE account_id = %s",
                        (int(kind == "Account.Suspended"), ref_of(cur, event)))
        elif kind == "Account.Erased":
            account_id = ref_of(cur, event)
            cur.execute("UPDATE accounts SET erased_at = %s WHERE account_id = %s",
                        (at(event), account_id))
            if account_id is not None:
                # Completes an erasure whose command crashed after recording the event but
                # before destroying the key (application/erasure.py). The key table is not a
                # read model; this is idempotent, and in a replay's scratch schema it only
                # writes a tombstone there.
                destroy_key(cur, account_id, at(event))
