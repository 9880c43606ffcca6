"""Key lookup read model: key hash -> key (1.2); staff users in access_users.py (1.5)."""

from __future__ import annotations

import json
from typing import Any

from projections.access_users import StaffQueries, UserHandlers
from projections.base import BatchEffects, at, dumps, event_type, index_stream, ref_of
from projections.config import CONFIG_EVENTS, apply_config


class AccessProjection(UserHandlers):
    name = "access"
    contexts = ("access",)

    def apply(self, cur: Any, event: Any, effects: BatchEffects) -> None:
        kind = event_type(event)
        if kind in CONFIG_EVENTS:  # gateway settings: the limiter reloads, keys stay cached
            apply_config(cur, event)
            effects.config_changed = True
            return
        handler = getattr(self, "_" + kind.replace(".", "_"), None)
        if handler is not None:
            handler(cur, event)
            effects.access_changed = True

    def _ApiKey_Issued(self, cur, e) -> None:
        index_stream(cur, e, e.key_id)
        cur.execute(
            "INSERT INTO api_keys (key_id, account_id, name, name_lower, environment, prefix, "
            "last4, status, scopes, expires_at, max_requests, allowed_models, created_by, "
            "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, 'active', %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (e.key_id, e.account_id, e.name, e.name.lower(), e.environment, e.prefix, e.last4,
             dumps(e.scopes), e.expires_at, e.max_requests, dumps(e.allowed_models),
             e.created_by, at(e)))
        cur.execute("INSERT INTO key_secrets (secret_hash, key_id, valid_until) "
                    "VALUES (%s, %s, NULL) ON CONFLICT DO NOTHING", (e.secret_hash, e.key_id))

    def _ApiKey_Rotated(self, cur, e) -> None:
        key_id = ref_of(cur, e)
        # Only the secret just replaced keeps a grace window; any older one ends now.
        cur.execute("DELETE FROM key_secrets WHERE key_id = %s AND secret_hash <> %s",
                    (key_id, e.previous_secret_hash))
        cur.execute("UPDATE key_secrets SET valid_until = %s WHERE secret_hash = %s",
                    (e.previous_valid_until, e.previous_secret_hash))
        cur.execute("INSERT INTO key_secrets (secret_hash, key_id, valid_until) "
                    "VALUES (%s, %s, NULL) ON CONFLICT DO NOTHING", (e.secret_hash, key_id))
        cur.execute("UPDATE api_keys SET prefix = %s, last4 = %s, rotated_at = %s "
                    "WHERE key_id = %s", (e.prefix, e.last4, at(e), key_id))

    def _ApiKey_Revoked(self, cur, e) -> None:
        cur.execute("UPDATE api_keys SET status = 'revoked', revoked_at = %s WHERE key_id = %s",
                    (at(e), ref_of(cur, e)))

    def _ApiKey_SettingsChanged(self, cur, e) -> None:
        sets, values = [], []
        for change in e.changes:
            column = _SETTING_COLUMNS.get(change["field"])
            if column is None:
                continue  # a setting this read model does not show
            new = change["new"]
            sets.append(f"{column} = %s")
            values.append(dumps(new) if column in _JSON_COLUMNS else new)
            if column == "name":
                sets.append("name_lower = %s")
                values.append(new.lower())
        if sets:
            cur.execute(f"UPDATE api_keys SET {', '.join(sets)} WHERE key_id = %s",
                        (*values, ref_of(cur, e)))

    def _ApiKey_Expired(self, cur, e) -> None:
        # A key revoked before the sweep saw it expire stays 'revoked': revocation is final.
        cur.execute("UPDATE api_keys SET status = CASE WHEN status = 'revoked' THEN status "
                    "ELSE 'expired' END, expired_at = %s WHERE key_id = %s",
                    (e.expired_at, ref_of(cur, e)))


# Setting -> api_keys column (a fixed map: column names are never taken from event data).
_SETTING_COLUMNS = {field: field for field in (
    "name", "scopes", "expires_at", "max_requests", "ip_allowlist", "referrer_allowlist",
    "allowed_models", "labels", "rate_limits")}
_JSON_COLUMNS = frozenset({"scopes", "ip_allowlist", "referrer_allowlist", "allowed_models",
                           "labels", "rate_limits"})


class AccessQueries(StaffQueries):
    """Reads for authentication and key listings; implements the AccessReader port."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def key_by_hash(self, secret_hash: str):
        from application.principals import KeyRecord

        with self.db.transaction() as cur:
            cur.execute(
                "SELECT k.key_id, k.account_id, k.environment, k.status, k.expires_at, k.scopes, "
                "k.allowed_models, s.valid_until, k.prefix, k.ip_allowlist, "
                "k.referrer_allowlist, k.max_requests, k.rate_limits, k.labels, a.plan, "
                "a.restricted, a.rate_limits "
                "FROM key_secrets s JOIN api_keys k ON k.key_id = s.key_id "
                # The plan, the restricted flag and an enterprise account's explicit limits
                # pick the key's rate-limit profile (1.10).
                "LEFT JOIN accounts a ON a.account_id = k.account_id "
                "WHERE s.secret_hash = %s", (secret_hash,))
            row = cur.fetchone()
        if row is None:
            return None
        return KeyRecord(row[0], row[1], row[2], row[3], row[4], tuple(json.loads(row[5])),
                         tuple(json.loads(row[6])), row[7], row[8],
                         ip_allowlist=tuple(json.loads(row[9])),
                         referrer_allowlist=tuple(json.loads(row[10])),
                         max_requests=row[11], rate_limits=json.loads(row[12]),
                         labels=json.loads(row[13]), plan=row[14] or "dev",
                         restricted=bool(row[15]), account_limits=json.loads(row[16] or "{}"))

    def key_names(self, account_id: str) -> list[str]:
        with self.db.transaction() as cur:
            cur.execute("SELECT name_lower FROM api_keys WHERE account_id = %s AND "
                        "status <> 'revoked'", (account_id,))
            return [r[0] for r in cur.fetchall()]

    def key_named(self, account_id: str, name: str) -> str | None:
        """The id of the account's non-revoked key of that name, ignoring case (1.1)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT key_id FROM api_keys WHERE account_id = %s AND name_lower = %s "
                        "AND status <> 'revoked' ORDER BY key_id LIMIT 1",
                        (account_id, name.lower()))
            row = cur.fetchone()
        return None if row is None else row[0]

    def keys_of(self, account_id: str) -> list[dict]:
        with self.db.transaction() as cur:
            cur.execute(f"{_VIEW} WHERE k.account_id = %s ORDER BY k.created_at, k.key_id",
                        (account_id,))
            rows = cur.fetchall()
            cur.execute("SELECT key_id, COUNT(*) FROM requests WHERE account_id = %s "
                        "GROUP BY key_id", (account_id,))
            used = dict(cur.fetchall())
        return [_view(row, used.get(row[0], 0)) for row in rows]

    def creations_since(self, account_id: str, created_by_prefix: str,
                        since: str) -> list[str]:
        """When the account's keys created by such actors since ``since`` were created,
        oldest first (the hourly creation limit of 1.1 and its Retry-After)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT created_at FROM api_keys WHERE account_id = %s AND "
                        "created_by LIKE %s AND created_at >= %s ORDER BY created_at",
                        (account_id, created_by_prefix + "%", since))
            return [row[0] for row in cur.fetchall()]

    def key_view(self, key_id: str) -> dict | None:
        """One key as its owner sees it (never a hash); None when there is no such key."""
        with self.db.transaction() as cur:
            cur.execute(f"{_VIEW} WHERE k.key_id = %s", (key_id,))
            row = cur.fetchone()
        return None if row is None else _view(row, self.requests_used(key_id))

    def requests_used(self, key_id: str) -> int:
        """Requests this key has made: one per request recorded with a hold (HoldPlaced),
        whatever its outcome, from the usage read model (1.2 check 8, ``max_requests``).

        Counted from durable facts (the request streams), but it lags by the projector: the
        requests in flight, and those not yet projected, are not in it, so concurrent
        requests may overshoot a quota by that many. Indexed by migration 014."""
        with self.db.transaction() as cur:
            cur.execute("SELECT COUNT(*) FROM requests WHERE key_id = %s", (key_id,))
            return int(cur.fetchone()[0])

    def keys_due_to_expire(self, now: str) -> list[str]:
        """Active keys whose expires_at (UTC ISO text, as every writer stores it) has passed."""
        with self.db.transaction() as cur:
            cur.execute("SELECT key_id FROM api_keys WHERE status = 'active' AND "
                        "expires_at IS NOT NULL AND expires_at <= %s ORDER BY expires_at",
                        (now,))
            return [r[0] for r in cur.fetchall()]

    def note_key_used(self, key_id: str, now: str, not_since: str) -> bool:
        """Set last_used_at to ``now`` unless it is later than ``not_since`` (1.2: at most
        once per 60 s per key); True when written. An operational row, not a read model:
        no event records a use, so a replay neither rebuilds nor compares it."""
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO key_last_used (key_id, last_used_at) VALUES (%s, %s) "
                        "ON CONFLICT (key_id) DO UPDATE SET last_used_at = excluded.last_used_at "
                        "WHERE key_last_used.last_used_at <= %s", (key_id, now, not_since))
            return bool(cur.rowcount)


_VIEW = ("SELECT k.key_id, k.account_id, k.name, k.environment, k.prefix, k.last4, k.status, "
         "k.scopes, k.expires_at, k.max_requests, k.ip_allowlist, k.referrer_allowlist, "
         "k.allowed_models, k.labels, k.rate_limits, k.created_at, k.rotated_at, k.revoked_at, "
         "k.expired_at, u.last_used_at FROM api_keys k "
         "LEFT JOIN key_last_used u ON u.key_id = k.key_id")
_JSON_VIEW = frozenset({"scopes", "ip_allowlist", "referrer_allowlist", "allowed_models",
                        "labels", "rate_limits"})
_VIEW_FIELDS = ("id", "account_id", "name", "environment", "prefix", "last4", "status",
                "scopes", "expires_at", "max_requests", "ip_allowlist", "referrer_allowlist",
                "allowed_models", "labels", "rate_limits", "created_at", "rotated_at",
                "revoked_at", "expired_at", "last_used_at")


def _view(row: Any, requests_used: int) -> dict:
    out: dict[str, Any] = {"object": "api_key"}
    for field, value in zip(_VIEW_FIELDS, row, strict=True):
        out[field] = json.loads(value) if field in _JSON_VIEW else value
    out["requests_used"] = requests_used
    return out
