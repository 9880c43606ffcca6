"""Key settings commands: PATCH a key (1.3) and record expiries (the scheduler's, 1.3).

Validation is the domain's (domain/key_settings.py); the change list is computed from the
aggregate's own history, not from the read model, so ``old`` is exactly what the events
say. Like AccessService, each command waits for the access projection before it returns,
so the caller's next read (and every worker's key cache, cleared on projection) sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Protocol

from eventsourcing.application import AggregateNotFoundError

from application.event_stores import EventStores
from application.ports import Clock
from application.principals import CUSTOMER_SCOPES
from application.retry import with_retry
from domain import key_settings
from domain.api_key import ApiKey
from domain.errors import DomainError


class KeySettingsReader(Protocol):
    def key_named(self, account_id: str, name: str) -> str | None: ...
    def key_view(self, key_id: str) -> dict | None: ...
    def keys_due_to_expire(self, now: str) -> list[str]: ...


class KeySettingsService:
    def __init__(self, stores: EventStores, reader: KeySettingsReader, clock: Clock,
                 wait: Callable[[str, int], None]) -> None:
        self.app = stores.access
        self.reader = reader
        self.clock = clock
        self.wait = wait

    def update_key(self, key_id: str, body: object, actor: str,
                   ceiling: Mapping[str, int] | None = None, is_admin: bool = False, *,
                   account_id: str | None = None,
                   allowed_scopes: Collection[str] = CUSTOMER_SCOPES) -> dict:
        """Apply a PATCH body; returns the key's view after it (unchanged when nothing
        differs, and then no event). ``account_id``, when given, is the caller's own
        account: another account's key is then 404 like an unknown one (1.4).
        ``ceiling`` is the plan's rate limits, which only an admin may exceed (1.1)."""
        now = self.clock.now()
        # Validated before anything is loaded: a bad body costs no read and writes nothing.
        new = key_settings.validate_patch(body, now=now, allowed_scopes=allowed_scopes,
                                          ceiling=ceiling, is_admin=is_admin)

        def command() -> int:
            key = self._key(key_id, account_id)
            changes = key_settings.changes(key.settings, new)
            renamed = next((c["new"] for c in changes if c["field"] == "name"), None)
            # Unique per account ignoring case (1.1), among keys not revoked; a key may
            # change the case of its own name. Checked on the read model, as issue does.
            if renamed is not None and \
                    self.reader.key_named(key.account_id, renamed) not in (None, key_id):
                raise DomainError("key_name_taken",
                                  "this account already has a key with that name",
                                  param="name")
            if not key.update(changes, actor, now):
                return 0
            return self.app.save(key)[-1].notification.id

        position = with_retry(command)
        if position:
            self.wait("access", position)
        view = self.reader.key_view(key_id)
        if view is None:  # saved but not projected: cannot happen after wait
            raise DomainError("not_found", "no such key", param="key_id")
        return view

    def expire_due(self, now: datetime | None = None) -> int:
        """Record ApiKey.Expired for every active key whose expires_at has passed; returns
        how many were recorded. The read model names the candidates; each aggregate decides
        (once, and never for a revoked key), so a lagging read model only costs a reload.
        Authentication refuses an expired key at check time whether or not this ran."""
        now = now or self.clock.now()
        due = self.reader.keys_due_to_expire(now.astimezone(UTC).isoformat())
        recorded, last = 0, 0
        for key_id in due:
            position = with_retry(lambda key_id=key_id: self._expire(key_id, now))
            if position:
                recorded += 1
                last = max(last, position)
        if last:
            self.wait("access", last)
        return recorded

    def _expire(self, key_id: str, now: datetime) -> int:
        key = self._key(key_id, None)
        if not key.expire(now):
            return 0
        return self.app.save(key)[-1].notification.id

    def _key(self, key_id: str, account_id: str | None) -> ApiKey:
        try:
            key = self.app.repository.get(ApiKey.create_id(key_id))
        except AggregateNotFoundError:
            key = None
        if key is None or (account_id is not None and key.account_id != account_id):
            raise DomainError("not_found", "no such key", param="key_id")
        return key
