"""Who is calling: an API-key principal or a staff principal, as the use cases see them."""

from __future__ import annotations

from dataclasses import dataclass

CUSTOMER_SCOPES = ("inference:use", "models:read", "keys:read", "keys:write", "usage:read",
                   "billing:read", "billing:write", "account:read", "account:write")


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


@dataclass(frozen=True)
class KeyPrincipal:
    key: KeyRecord

    @property
    def account_id(self) -> str:
        return self.key.account_id

    def allows(self, permission: str) -> bool:
        return "*" in self.key.scopes or permission in self.key.scopes


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
        if permission == "admin":
            return self.staff.role in ("admin", "owner")
        if permission == "owner":
            return self.staff.role == "owner"
        return permission in self.staff.permissions
