"""Account aggregate: who the customer is, which plan they are on and the limits it runs
under (the restricted profile and an enterprise account's explicit limits, 1.10)."""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event

from domain import key_settings
from domain.errors import DomainError
from domain.ids import stream_uuid
from domain.reasons import reason_text

PLANS = ("trial", "dev", "team", "enterprise")


class Account(Aggregate):
    class Opened(Aggregate.Created):
        account_id: str
        origin: str
        plan: str
        email_enc: str
        email_domain_hash: str
        actor: str

    class Suspended(Aggregate.Event):
        reason: str
        actor: str

    class Reinstated(Aggregate.Event):
        reason: str
        actor: str

    class RestrictedProfileSet(Aggregate.Event):
        """The restricted limit profile (1.10) switched on or off by an admin."""

        enabled: bool
        reason: str
        actor: str

    class SettingsChanged(Aggregate.Event):
        """Account settings changed; each change is {field, old, new} (11.4). Only
        ``rate_limits`` (an enterprise account's explicit limits) is written so far."""

        changes: list
        reason: str
        actor: str

    class Erased(Aggregate.Event):
        """Personal data destroyed (11.12): the data key goes, the events stay as they are."""

        reason: str
        erased_by: str

    @staticmethod
    def create_id(account_id: str, **_: object):
        return stream_uuid(f"account:{account_id}")

    @event(Opened)
    def __init__(self, account_id: str, origin: str, plan: str, email_enc: str,
                 email_domain_hash: str, actor: str) -> None:
        self.account_id = account_id
        self.plan = plan
        self.email_enc = email_enc  # ciphertext only; see adapters/data_keys.py
        self.suspended = False
        self.erased = False
        # Set here, not only by their events, so accounts opened before these existed load.
        self.restricted = False
        self.rate_limits: dict[str, int] = {}

    @event(Suspended)
    def suspend(self, reason: str, actor: str) -> None:
        self.suspended = True

    @event(Reinstated)
    def reinstate(self, reason: str, actor: str) -> None:
        self.suspended = False

    def set_restricted(self, enabled: bool, reason: str, actor: str) -> bool:
        """Switch the restricted profile; False, and no event, when it already is so."""
        if enabled == self.restricted:
            return False
        self._set_restricted(enabled, reason, actor)
        return True

    @event(RestrictedProfileSet)
    def _set_restricted(self, enabled: bool, reason: str, actor: str) -> None:
        self.restricted = enabled

    def set_rate_limits(self, limits: dict[str, int], reason: str, actor: str) -> bool:
        """Replace the explicit limits (already checked by ``explicit_limits``); False, and
        no event, when they are the same. Only an enterprise plan reads them (1.10), so on
        any other plan they would be stored to no effect: refused instead."""
        if self.plan != "enterprise":
            raise DomainError("conflict", f"explicit rate limits apply to enterprise accounts "
                              f"only; this account's plan is {self.plan}", param="rate_limits")
        if limits == self.rate_limits:
            return False
        self._change_settings([{"field": "rate_limits", "old": dict(self.rate_limits),
                                "new": dict(limits)}], reason, actor)
        return True

    @event(SettingsChanged)
    def _change_settings(self, changes: list, reason: str, actor: str) -> None:
        for change in changes:
            if change["field"] == "rate_limits":
                # A copy: state must not share a dict with the stored event.
                self.rate_limits = dict(change["new"])

    def erase(self, reason: object, erased_by: str) -> None:
        check_erasure(self, reason)
        assert isinstance(reason, str)
        self._erase(reason.strip(), erased_by)

    @event(Erased)
    def _erase(self, reason: str, erased_by: str) -> None:
        self.erased = True


def check_erasure(account: Account | None, reason: object) -> None:
    """Refuse an erasure without a reason, or of an account already erased."""
    reason_text(reason)
    if account is not None and account.erased:
        raise DomainError("already_erased", "this account has already been erased",
                          param="account_id")


def restricted_flag(enabled: object) -> bool:
    if not isinstance(enabled, bool):
        raise DomainError("invalid_request", "enabled must be true or false", param="enabled")
    return enabled


def explicit_limits(value: object) -> dict[str, int]:
    """An enterprise account's explicit limits from a request body: the same rule as an
    admin-set key's limits (positive, bounded, named fields; null leaves the default)."""
    return key_settings.rate_limits(value, None, is_admin=True)
