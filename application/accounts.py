"""Account and wallet commands: open accounts, grant and purchase credit, trial, allowance;
an account's limit profile and the gateway-wide layer-1 bypass list (1.9, 1.10)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from application.erasure import PersonalDataKeys
from application.event_stores import EventStores
from application.ports import Clock
from application.retry import with_retry
from domain.account import (
    PLANS,
    Account,
    explicit_limits,
    restricted_flag,
)
from domain.config import IP_BYPASS, Config, bypass_networks
from domain.errors import DomainError
from domain.grant_log import GrantLog, check_grant
from domain.ids import new_id
from domain.reasons import reason_text
from domain.wallet import Wallet

TRIAL_CREDIT_MICROS = 5_000_000
TRIAL_DAYS = 14
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")

Waiter = Callable[[str, int], None]


def load_account(app: Any, account_id: object) -> Account:
    """The account, or 404 ``not_found`` (also for an id that is not text)."""
    if isinstance(account_id, str):
        try:
            return app.repository.get(Account.create_id(account_id))
        except AggregateNotFoundError:
            pass
    raise DomainError("not_found", "no such account", param="account_id")


class AccountService:
    def __init__(self, stores: EventStores, cipher: PersonalDataKeys, clock: Clock,
                 wait: Waiter) -> None:
        self.app = stores.accounts
        # Gateway settings (Config streams) live in the access context, beside the keys
        # and staff they also govern: its projection is the one whose progress already
        # makes every worker drop its access state.
        self.config_app = stores.access
        self.cipher = cipher
        self.clock = clock
        self.wait = wait

    def open_account(self, email: object, plan: object, actor: str, origin: str = "admin") -> str:
        if not isinstance(email, str) or len(email) > 254 or not EMAIL.match(email):
            raise DomainError("invalid_request", "email must be an e-mail address", param="email")
        if plan not in PLANS:
            raise DomainError("invalid_request", f"plan must be one of {', '.join(PLANS)}",
                              param="plan")
        account_id = new_id("acct")
        domain_hash = hashlib.sha256(email.rsplit("@", 1)[1].lower().encode()).hexdigest()
        # The account's data key is created and committed by this call, before the event
        # that uses it is saved (adapters/data_keys.py): a crash leaves at most an unused key.
        email_enc = self.cipher.encrypt(email.strip().lower(), account_id)
        account = Account(account_id=account_id, origin=origin, plan=plan,
                          email_enc=email_enc, email_domain_hash=domain_hash, actor=actor)
        wallet = Wallet(account_id=account_id)
        if plan == "trial":
            ends = self.clock.now() + timedelta(days=TRIAL_DAYS)
            wallet.grant_trial(TRIAL_CREDIT_MICROS, ends.isoformat())
        recordings = self.app.save(account, wallet)
        self.wait("accounts", recordings[-1].notification.id)
        return account_id

    def require_account(self, account_id: str) -> Account:
        return load_account(self.app, account_id)

    def _wallet(self, account_id: str) -> Wallet:
        self.require_account(account_id)
        return self.app.repository.get(Wallet.create_id(account_id))

    def grant_credits(self, account_id: object, amount: object, reason: object,
                      staff_user_id: str, grant_id: str = "") -> int:
        """Admin grant into ``purchased``, atomically with the admin's rolling 24 h cap.

        ``grant_id`` (from the request's Idempotency-Key) is recorded on the grant: a repeat
        of it changes nothing, even if the idempotency record was lost."""
        check_grant(amount, reason)
        if not isinstance(account_id, str):
            raise DomainError("invalid_request", "account_id must be a string", param="account_id")
        assert isinstance(amount, int) and isinstance(reason, str)

        def command() -> int:
            wallet = self._wallet(account_id)
            try:
                log = self.app.repository.get(GrantLog.create_id(staff_user_id))
            except AggregateNotFoundError:
                log = GrantLog(staff_user_id=staff_user_id)
            if not wallet.grant(amount, reason.strip(), f"staff:{staff_user_id}", grant_id):
                return 0  # already granted under this id: nothing to record or wait for
            log.record(account_id, amount, self.clock.now())
            return self.app.save(wallet, log)[-1].notification.id

        position = with_retry(command)
        self.wait("accounts", position)
        return position

    def credit_purchase(self, account_id: str, payment_id: str, amount_paid_cents: int,
                        package: str, actor: str) -> bool:
        """Placeholder until Stripe lands: 1 cent = 10,000 micros, once per payment id."""
        if not isinstance(amount_paid_cents, int) or amount_paid_cents <= 0:
            raise DomainError("invalid_request", "amount must be a positive number of cents")

        def command() -> tuple[bool, int]:
            wallet = self._wallet(account_id)
            applied = wallet.credit_purchase(payment_id, amount_paid_cents,
                                             amount_paid_cents * 10_000, package, actor)
            if not applied:
                return False, 0
            return True, self.app.save(wallet)[-1].notification.id

        applied, position = with_retry(command)
        if applied:
            self.wait("accounts", position)
        return applied

    def reset_allowance(self, account_id: str, plan: str, invoice_id: str, amount: int,
                        unused_allowance: int) -> bool:
        """Set the allowance to the plan amount (no rollover), once per invoice."""
        def command() -> tuple[bool, int]:
            wallet = self._wallet(account_id)
            if not wallet.reset_allowance(plan, invoice_id, amount, max(unused_allowance, 0)):
                return False, 0
            return True, self.app.save(wallet)[-1].notification.id

        applied, position = with_retry(command)
        if applied:
            self.wait("accounts", position)
        return applied

    def forfeit(self, account_id: str, pool: str, amount: int, reason: str) -> None:
        """Forfeit the unreserved part of a pool (trial ended, subscription cancelled)."""
        if amount <= 0:
            return

        def command() -> int:
            wallet = self._wallet(account_id)
            if pool == "trial":
                wallet.forfeit_trial(amount, reason)
            elif pool == "allowance":
                wallet.forfeit_allowance(amount, reason)
            else:
                raise DomainError("invalid_request", "only trial and allowance can be forfeited")
            return self.app.save(wallet)[-1].notification.id

        self.wait("accounts", with_retry(command))

    # -- limits (1.9, 1.10): each waits for its projection, so on return this worker's key
    # cache has been dropped (or its limiter reloaded) and the change applies at once here.

    def set_restricted(self, account_id: str, enabled: object, reason: object,
                       actor: str) -> bool:
        """Switch the account's restricted limit profile; False when it already was so."""
        flag, text = restricted_flag(enabled), reason_text(reason)

        def command() -> int:
            account = self.require_account(account_id)
            if not account.set_restricted(flag, text, actor):
                return 0
            return self.app.save(account)[-1].notification.id

        return self._run(command, "accounts")

    def set_rate_limits(self, account_id: str, limits: object, reason: object,
                        actor: str) -> bool:
        """Replace an enterprise account's explicit limits (null or absent fields: the
        default value); False when they are already these."""
        clean, text = explicit_limits(limits), reason_text(reason)

        def command() -> int:
            account = self.require_account(account_id)
            if not account.set_rate_limits(clean, text, actor):
                return 0
            return self.app.save(account)[-1].notification.id

        return self._run(command, "accounts")

    def set_ip_bypass(self, networks: object, reason: object, actor: str) -> bool:
        """Replace the layer-1 bypass list (stored in the normal form of
        ``bypass_networks``); False when it already was this list."""
        clean, text = bypass_networks(networks), reason_text(reason)

        def command() -> int:
            try:
                config = self.config_app.repository.get(Config.create_id(IP_BYPASS))
            except AggregateNotFoundError:
                # Two first changes at once both open the stream: one collides on its
                # version 1 and is retried against the other's.
                config = Config(name=IP_BYPASS)
            if not config.change(clean, text, actor):
                return 0
            return self.config_app.save(config)[-1].notification.id

        return self._run(command, "access")

    def _run(self, command: Callable[[], int], context: str) -> bool:
        position = with_retry(command)
        if position:
            self.wait(context, position)
        return bool(position)
