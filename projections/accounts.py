"""Accounts read model: plan, suspension, erasure and limit profile per account."""

from __future__ import annotations

from typing import Any

from adapters.data_keys import destroy_key
from projections.base import BatchEffects, at, dumps, event_type, index_stream, ref_of


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
        elif kind == "Account.RestrictedProfileSet":
            cur.execute("UPDATE accounts SET restricted = %s WHERE account_id = %s",
                        (int(event.enabled), ref_of(cur, event)))
            # Keys carry their account's profile (AccessQueries.key_by_hash): this worker
            # drops its cached keys after the commit; others' entries expire within 1 s.
            effects.access_changed = True
        elif kind == "Account.SettingsChanged":
            for change in event.changes:
                if change["field"] == "rate_limits":  # the only setting this model shows
                    cur.execute("UPDATE accounts SET rate_limits = %s WHERE account_id = %s",
                                (dumps(change["new"]), ref_of(cur, event)))
                    effects.access_changed = True
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
