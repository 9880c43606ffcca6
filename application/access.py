"""Access commands and checks: bootstrap the owner, issue/rotate/revoke keys, authenticate."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application import security_events
from application.accounts import load_account
from application.erasure import PersonalDataKeys
from application.event_stores import EventStores
from application.ports import Clock
from application.principals import (
    CUSTOMER_SCOPES,
    KeyPrincipal,
    KeyRecord,
    StaffPrincipal,
    StaffRecord,
)
from application.retry import with_retry
from domain import key_settings
from domain.api_key import DEFAULT_GRACE_SECONDS, ApiKey
from domain.errors import DomainError
from domain.ids import new_id
from domain.key_format import (
    credential_kind,
    display_prefix,
    generate_api_key,
    generate_staff_token,
    last4,
    secret_hash,
)
from domain.permissions import grantable_by
from domain.user import GRANTABLE_PERMISSIONS, OwnerBootstrap, User, seed_roster

MAX_KEYS_PER_ACCOUNT = 100
STAFF_TOKEN_DAYS = 30
CACHE_SECONDS = 1.0  # a revoked or new key is honoured by every worker within 1 s (1.2)
# An unknown well-formed key is remembered longer, so repeating one costs no lookup (1.9);
# a real key is never unknown before it is issued (its secret is random), so no new key waits.
UNKNOWN_SECONDS = 60.0


class AccessReader(Protocol):
    def key_by_hash(self, secret_hash: str) -> KeyRecord | None: ...
    def staff_by_hash(self, secret_hash: str) -> StaffRecord | None: ...
    def key_names(self, account_id: str) -> list[str]: ...


class AuthError(DomainError):
    pass


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    secret: str
    prefix: str
    last4: str


class AccessService:
    def __init__(self, stores: EventStores, reader: AccessReader, pepper: bytes,
                 cipher: PersonalDataKeys, clock: Clock,
                 wait: Callable[[str, int], None]) -> None:
        self.app = stores.access
        self.accounts = stores.accounts
        self.reader = reader
        self.pepper = pepper
        self.cipher = cipher
        self.clock = clock
        self.wait = wait
        self._key_cache: dict[str, tuple[float, KeyRecord | None]] = {}
        self._staff_cache: dict[str, tuple[float, StaffRecord | None]] = {}
        self.lookups = 0  # counted so tests can prove malformed keys cost no lookup

    # -- commands -------------------------------------------------------------------------
    def bootstrap_owner(self, email: str) -> tuple[str, str]:
        """Create the first owner and a staff token; refuses once an owner exists."""
        user_id = new_id("usr")
        claim = OwnerBootstrap(user_id=user_id)
        user = User(user_id=user_id, account_id=None, role="owner",
                    # A staff user of no account: their data key is keyed by their user id.
                    email_enc=self.cipher.encrypt(email, user_id), actor="system:bootstrap")
        # The first owner holds every permission so a new install can be operated at all.
        for permission in GRANTABLE_PERMISSIONS:
            user.grant_permission(permission, "granted to the first owner at bootstrap",
                                  "system:bootstrap")
        token = self._issue_staff_token(user)
        try:
            # The owner roster starts with this owner (the last-owner rule, 1.4).
            position = self.app.save(claim, user, seed_roster(user_id))[-1].notification.id
        except IntegrityError:
            raise DomainError("conflict", "an owner already exists; bootstrap refused") from None
        self.wait("access", position)  # the token works as soon as it is handed out
        return user_id, token

    def _issue_staff_token(self, user: User) -> str:
        token = generate_staff_token()
        expires = self.clock.now() + timedelta(days=STAFF_TOKEN_DAYS)
        user.issue_staff_token(new_id("stk"), display_prefix(token), last4(token),
                               secret_hash(self.pepper, token), expires.isoformat())
        return token

    def issue_key(self, account_id: str, name: object, environment: object, scopes: object,
                  expires_in_days: object, actor: str, settings: dict | None = None,
                  creator_scopes: tuple[str, ...] | None = None,
                  ceiling: dict | None = None) -> IssuedKey:
        """A new key (1.1). ``settings`` are the other attributes of its create body
        (allowlists, quota, limits, labels...), validated as a PATCH would and recorded
        with the issue in one save. ``creator_scopes``: a key creating a key may grant at
        most its own permissions (403 insufficient_scope); ``ceiling``: the plan's rate
        limits, which only an admin (who passes none) may exceed."""
        load_account(self.accounts, account_id)
        name = key_settings.name(name)
        if environment not in ("live", "test"):
            raise DomainError("invalid_request", "environment must be live or test",
                              param="environment")
        scope_list = _scopes(scopes)
        if creator_scopes is not None and not grantable_by(creator_scopes, scope_list):
            raise DomainError("insufficient_scope",
                              "a key cannot grant scopes beyond its own", param="scopes")
        expires_at = _expiry(expires_in_days, self.clock.now())
        extra = key_settings.validate_patch(settings or {}, now=self.clock.now(),
                                            allowed_scopes=CUSTOMER_SCOPES, ceiling=ceiling,
                                            is_admin=ceiling is None)
        names = self.reader.key_names(account_id)
        if name.lower() in names:
            raise DomainError("key_name_taken", "this account already has a key with that name",
                              param="name")
        if len(names) >= MAX_KEYS_PER_ACCOUNT:
            raise DomainError("key_limit_reached", "an account may hold at most 100 keys")
        secret = generate_api_key(environment)
        key_id = new_id("key")
        key = ApiKey(key_id=key_id, account_id=account_id, name=name, environment=environment,
                     prefix=display_prefix(secret), last4=last4(secret),
                     secret_hash=secret_hash(self.pepper, secret), scopes=scope_list,
                     expires_at=expires_at, max_requests=None, allowed_models=[],
                     created_by=actor)
        key.update(key_settings.changes(key.settings, extra), actor)
        self.wait("access", self.app.save(key)[-1].notification.id)
        return IssuedKey(key_id, secret, display_prefix(secret), last4(secret))

    def _key(self, key_id: str) -> ApiKey:
        try:
            return self.app.repository.get(ApiKey.create_id(key_id))
        except AggregateNotFoundError:
            raise DomainError("not_found", "no such key", param="key_id") from None

    def rotate_key(self, key_id: str, grace_seconds: object, actor: str) -> IssuedKey:
        if grace_seconds is None:
            grace_seconds = DEFAULT_GRACE_SECONDS

        def command() -> tuple[str, int]:
            key = self._key(key_id)
            secret = generate_api_key(key.environment)
            key.rotate(display_prefix(secret), last4(secret), secret_hash(self.pepper, secret),
                       grace_seconds, self.clock.now(), actor)  # type: ignore[arg-type]
            return secret, self.app.save(key)[-1].notification.id

        secret, position = with_retry(command)
        self.wait("access", position)
        return IssuedKey(key_id, secret, display_prefix(secret), last4(secret))

    def revoke_key(self, key_id: str, reason: object, actor: str) -> None:
        if not isinstance(reason, str) or not reason.strip():
            raise DomainError("invalid_request", "reason is required", param="reason")

        def command() -> int:
            key = self._key(key_id)
            if not key.revoke(reason.strip(), actor):
                return 0
            return self.app.save(key)[-1].notification.id

        position = with_retry(command)
        if position:
            self.wait("access", position)

    # -- checks ---------------------------------------------------------------------------
    def authenticate_key(self, credential: str) -> KeyPrincipal:
        """Checks 1-4 of spec 1.2, in order; stops at the first failure."""
        kind = credential_kind(credential)
        if kind == "staff":
            raise AuthError("wrong_credential_type",
                            "staff tokens cannot be used on /v1 routes; use an API key")
        if kind is None:
            raise AuthError("invalid_api_key", "the API key is not valid")
        record = self._cached(self._key_cache, secret_hash(self.pepper, credential),
                              self.reader.key_by_hash)
        if record is None:
            raise AuthError("invalid_api_key", "the API key is not valid")
        now = self.clock.now()
        if record.status == "revoked":
            raise AuthError("api_key_revoked", "the API key has been revoked")
        if record.secret_valid_until is not None and \
                datetime.fromisoformat(record.secret_valid_until) <= now:
            raise AuthError("api_key_revoked", "this secret was rotated and is no longer valid")
        if record.expires_at is not None and datetime.fromisoformat(record.expires_at) <= now:
            raise AuthError("api_key_expired", "the API key has expired")
        return KeyPrincipal(record)

    def authenticate_staff(self, credential: str) -> StaffPrincipal:
        kind = credential_kind(credential)
        if kind in ("live", "test"):
            raise AuthError("wrong_credential_type",
                            "API keys cannot be used on staff routes; use a staff token")
        if kind is None:
            raise AuthError("invalid_api_key", "the staff token is not valid")
        record = self._cached(self._staff_cache, secret_hash(self.pepper, credential),
                              self.reader.staff_by_hash)
        if record is None:
            raise AuthError("invalid_api_key", "the staff token is not valid")
        if datetime.fromisoformat(record.expires_at) <= self.clock.now():
            raise AuthError("api_key_expired", "the staff token has expired")
        return StaffPrincipal(record)

    def _cached(self, cache: dict, digest: str, load: Callable) -> object:
        hit = cache.get(digest)
        now = time.monotonic()
        if hit is not None and now - hit[0] < (CACHE_SECONDS if hit[1] is not None
                                               else UNKNOWN_SECONDS):
            return hit[1]
        self.lookups += 1
        value = load(digest)
        if len(cache) > 100_000:
            cache.clear()
        cache[digest] = (now, value)
        return value

    def forget_cached(self) -> None:
        """Called when access events are projected, so this worker sees them at once."""
        self._key_cache.clear()
        self._staff_cache.clear()


def check_model_allowed(record: KeyRecord, model_id: str) -> None:
    """403 ``model_not_allowed`` for a model outside the key's allowlist, recorded as the
    key's misuse (11.3)."""
    if not model_allowed(record, model_id):
        security_events.report_misuse(record, "model_not_allowed")
        raise DomainError("model_not_allowed", "this key may not use that model",
                          param="model")


def model_allowed(record: KeyRecord, model_id: str) -> bool:
    if not record.allowed_models:
        return True
    return any(fnmatch.fnmatchcase(model_id, glob) for glob in record.allowed_models)


def _scopes(scopes: object) -> list[str]:
    """Absent: every permission the key's account may hold (``*``)."""
    return ["*"] if scopes is None else key_settings.scopes(scopes, CUSTOMER_SCOPES)


def _expiry(expires_in_days: object, now: datetime) -> str | None:
    return None if expires_in_days is None else key_settings.expires_in_days(expires_in_days,
                                                                             now)
