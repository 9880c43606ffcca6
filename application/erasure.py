"""Account erasure (11.12): record ``Account.Erased``, then destroy the account's data key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from eventsourcing.application import AggregateNotFoundError

from application.event_stores import EventStores
from application.retry import with_retry
from domain.account import Account, check_erasure
from domain.errors import DomainError


class PersonalDataKeys(Protocol):
    """Personal-data cipher with one data key per account (adapters/data_keys.py).

    It supersedes ``ports.PersonalDataCipher`` for personal fields: ``encrypt`` names the
    account whose key is used (created on first use, committed before it is returned), and
    ``decrypt`` answers ``"[erased]"`` once that key is destroyed.
    """

    def encrypt(self, plaintext: str, account_id: str) -> str: ...
    def decrypt(self, ciphertext: str, account_id: str | None = None) -> str: ...
    def destroy(self, account_id: str) -> None: ...


class ErasureService:
    def __init__(self, stores: EventStores, keys: PersonalDataKeys,
                 wait: Callable[[str, int], None]) -> None:
        self.app = stores.accounts
        self.keys = keys
        self.wait = wait

    def erase_account(self, account_id: object, reason: object, actor: str) -> None:
        """Erase an account's personal data; events are neither deleted nor rewritten.

        Order: the event first, the key second. The key's destruction cannot be undone,
        so it happens only once the log says why and by whom; a crash between the two
        leaves an erasure that is recorded but not yet carried out, which is finished by
        the accounts projection applying ``Account.Erased`` (it destroys the key in its
        own transaction) or by repeating this command. The other order could destroy
        data with no record of it, e.g. if the save then failed or the process died.
        """
        check_erasure(None, reason)  # a refused command leaves the store unchanged (11.3)
        if not isinstance(account_id, str):
            raise DomainError("invalid_request", "account_id must be a string",
                              param="account_id")
        assert isinstance(reason, str)

        def command() -> int:
            account = self._account(account_id)
            if account.erased:
                # An earlier run may have stopped between its two steps: finish it (it is
                # idempotent) before answering already_erased.
                self.keys.destroy(account_id)
            account.erase(reason, actor)
            return self.app.save(account)[-1].notification.id

        position = with_retry(command)
        self.keys.destroy(account_id)
        self.wait("accounts", position)

    def account_email(self, account_id: str) -> str:
        """The account's e-mail for an owner, decrypted; ``"[erased]"`` after erasure."""
        return self.keys.decrypt(self._account(account_id).email_enc, account_id)

    def _account(self, account_id: str) -> Account:
        try:
            return self.app.repository.get(Account.create_id(account_id))
        except AggregateNotFoundError:
            raise DomainError("not_found", "no such account", param="account_id") from None
