"""Who is calling: an API-key principal or a staff principal, as the use cases see them."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.permissions import CUSTOMER_SCOPES, key_allows, staff_allows

__all__ = ["CUSTOMER_SCOPES", "KeyPrincipal", "KeyRecord", "StaffPrincipal", "StaffRecord"]


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    account_id: str
    environment: str
    status: str
    expires_at: str | None
    scopes: tuple[str, ...]
    allowed_models: tuple[str, ...]
    secret_valid_until: str | None  # set for a rotated-out secret in its grace period
    prefix: str
    # Key settings (1.1, 1.6, 1.7, 1.10), with defaults so older constructors keep working;
    # an empty allowlist is no restriction. The dicts stay out of the hash (unhashable).
    ip_allowlist: tuple[str, ...] = ()
    referrer_allowlist: tuple[str, ...] = ()
    max_requests: int | None = None
    rate_limits: dict[str, int] = field(default_factory=dict, hash=False)
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    plan: str = "dev"  # the account's plan: its rate-limit profile (1.10)
    restricted: bool = False  # the account's restricted profile, set by an admin (1.10)
    # An enterprise account's explicit limits (1.10); the plan's defaults fill the rest.
    account_limits: dict[str, int] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class KeyPrincipal:
    key: KeyRecord

    @property
    def account_id(self) -> str:
        return self.key.account_id

    def allows(self, permission: str) -> bool:
        """Its scopes within what a customer may hold (1.4): never a staff resource."""
        return key_allows(self.key.scopes, permission)


@dataclass(frozen=True)
class StaffRecord:
    token_id: str
    user_id: str
    role: str
    permissions: tuple[str, ...]
    expires_at: str


@dataclass(frozen=True)
class StaffPrincipal:
    staff: StaffRecord

    @property
    def user_id(self) -> str:
        return self.staff.user_id

    def allows(self, permission: str) -> bool:
        """Role-based for admin/owner routes; finance/audit are granted one by one (1.4)."""
        return staff_allows(self.staff.role, self.staff.permissions, permission)
