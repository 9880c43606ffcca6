"""Staff users and their tokens: the read model staff authentication uses (1.4, 1.5)."""

from __future__ import annotations

import json
from typing import Any

from projections.base import at, dumps, index_stream, ref_of


class UserHandlers:
    """The User events of the access projection (mixed into AccessProjection)."""

    def _User_Added(self, cur, e) -> None:
        index_stream(cur, e, e.user_id)
        cur.execute("INSERT INTO users (user_id, account_id, role, permissions, added_at) "
                    "VALUES (%s, %s, %s, '[]', %s) ON CONFLICT DO NOTHING",
                    (e.user_id, e.account_id, e.role, at(e)))

    def _User_PermissionGranted(self, cur, e) -> None:
        self._set_permissions(cur, ref_of(cur, e), add=e.permission)

    def _User_PermissionRevoked(self, cur, e) -> None:
        self._set_permissions(cur, ref_of(cur, e), remove=e.permission)

    def _set_permissions(self, cur, user_id: str, add: str | None = None,
                         remove: str | None = None) -> None:
        cur.execute("SELECT permissions FROM users WHERE user_id = %s", (user_id,))
        permissions = set(json.loads(cur.fetchone()[0]))
        if add:
            permissions.add(add)
        permissions.discard(remove)
        cur.execute("UPDATE users SET permissions = %s WHERE user_id = %s",
                    (dumps(sorted(permissions)), user_id))

    def _User_RoleChanged(self, cur, e) -> None:
        cur.execute("UPDATE users SET role = %s WHERE user_id = %s", (e.new, ref_of(cur, e)))

    def _User_Deactivated(self, cur, e) -> None:
        # The tokens stay as rows; staff_by_hash refuses every token of an inactive user.
        cur.execute("UPDATE users SET active = 0, deactivated_at = %s WHERE user_id = %s",
                    (at(e), ref_of(cur, e)))

    def _User_StaffTokenIssued(self, cur, e) -> None:
        cur.execute("INSERT INTO staff_tokens (secret_hash, token_id, user_id, prefix, last4, "
                    "expires_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (e.secret_hash, e.token_id, ref_of(cur, e), e.prefix, e.last4, e.expires_at))

    def _User_StaffTokenRevoked(self, cur, e) -> None:
        # Kept (marked), not deleted: the user's page still lists it, as revoked.
        cur.execute("UPDATE staff_tokens SET revoked_at = %s WHERE token_id = %s",
                    (at(e), e.token_id))


class StaffQueries:
    """Reads of staff users and tokens (part of the AccessReader port)."""

    db: Any

    def staff_by_hash(self, secret_hash: str):
        """The token's user as of now; None (so 401) for a revoked token or any token of a
        deactivated user (1.5: a token never outlives its user's deactivation)."""
        from application.principals import StaffRecord

        with self.db.transaction() as cur:
            cur.execute(
                "SELECT t.token_id, t.user_id, u.role, u.permissions, t.expires_at "
                "FROM staff_tokens t JOIN users u ON u.user_id = t.user_id "
                "WHERE t.secret_hash = %s AND t.revoked_at IS NULL AND u.active = 1",
                (secret_hash,))
            row = cur.fetchone()
        if row is None:
            return None
        return StaffRecord(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4])

    def user_view(self, user_id: str) -> dict | None:
        """A user as admins see it (no e-mail: it stays encrypted in the events)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT user_id, account_id, role, permissions, active, added_at, "
                        "deactivated_at FROM users WHERE user_id = %s", (user_id,))
            row = cur.fetchone()
        if row is None:
            return None
        return {"id": row[0], "object": "user", "account_id": row[1], "role": row[2],
                "permissions": json.loads(row[3]), "active": bool(row[4]),
                "added_at": row[5], "deactivated_at": row[6]}

    def tokens_of(self, user_id: str) -> list[dict]:
        """A user's staff tokens: display prefix and last 4 only, never a hash."""
        with self.db.transaction() as cur:
            cur.execute("SELECT token_id, prefix, last4, expires_at, revoked_at "
                        "FROM staff_tokens WHERE user_id = %s ORDER BY token_id", (user_id,))
            rows = cur.fetchall()
        return [{"id": r[0], "object": "staff_token", "prefix": r[1], "last4": r[2],
                 "expires_at": r[3], "revoked_at": r[4]} for r in rows]

    def staff_token_owner(self, token_id: str) -> str | None:
        """The user a staff token belongs to, to find its stream for revocation."""
        with self.db.transaction() as cur:
            cur.execute("SELECT user_id FROM staff_tokens WHERE token_id = %s", (token_id,))
            row = cur.fetchone()
        return row[0] if row else None

    def owner_ids(self) -> list[str]:
        with self.db.transaction() as cur:
            cur.execute("SELECT user_id FROM users WHERE role = 'owner' AND active = 1 "
                        "ORDER BY user_id")
            return [r[0] for r in cur.fetchall()]
