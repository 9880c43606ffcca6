"""Account erasure (11.12): the data key goes, events and balances stay, e-mails read "[erased]"."""

from __future__ import annotations

import sqlite3
import time

import pytest
from cryptography.exceptions import InvalidTag

from adapters.data_keys import ERASED, DataKeyStore
from adapters.secret_box import SecretBox
from domain.errors import DomainError
from domain.ids import new_id
from domain.user import User
from integration.support import place_hold, raw_events, settle
from projections.verify import verify

MASTER = bytes(range(32))  # conftest.make_settings' master key
REASON = "customer asked for erasure under GDPR article 17"


def caught_up(gateway) -> None:
    for context, position in gateway.stores.max_positions().items():
        assert gateway.projector.wait_for(context, position, timeout=10)


def open_with_user(gateway, email: str) -> tuple[str, str]:
    """An account with activity, plus a user of it (saved as an admin 'add user' would)."""
    account_id = gateway.accounts.open_account(email, "trial", "staff:test")
    gateway.accounts.grant_credits(account_id, 3_000_000, "erasure test grant", "usr_admin")
    aggregate, _ = place_hold(gateway, account_id, 40_000)
    settle(gateway, aggregate, 12_345)
    user_id = new_id("usr")
    user_email = "member-" + email
    gateway.stores.access.save(User(user_id=user_id, account_id=account_id, role="member",
                                    email_enc=gateway.data_keys.encrypt(user_email, account_id),
                                    actor="staff:test"))
    return account_id, user_email


def all_events(gateway) -> list:
    return [e for app in gateway.stores.by_context().values() for e in raw_events(app)]


def _tables(cur, dialect: str) -> list[str]:
    if dialect == "sqlite":
        cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        cur.execute("SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema()")
    return [row[0] for row in cur.fetchall()]


def _text(value) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("latin-1")
    return str(value)


def stored_text(gateway) -> str:
    """Every value of every table (read models, key table, events) plus the raw events."""
    chunks = [e.raw.decode("latin-1") for e in all_events(gateway)]
    with gateway.db.transaction() as cur:
        for table in _tables(cur, gateway.db.dialect):
            cur.execute(f'SELECT * FROM "{table}"')
            chunks.extend(_text(v) for row in cur.fetchall() for v in row)
    if gateway.config.kind == "sqlite":  # events live in a second file
        events_file = sqlite3.connect(gateway.config.sqlite_path)
        for (table,) in events_file.execute("SELECT name FROM sqlite_master "
                                            "WHERE type = 'table'").fetchall():
            rows = events_file.execute(f'SELECT * FROM "{table}"').fetchall()
            chunks.extend(_text(v) for row in rows for v in row)
        events_file.close()
    return "\n".join(chunks).lower()


def email_fields(gateway, account_id: str) -> list[str]:
    """The stored ciphertexts of the account's e-mail and of its users' e-mails."""
    out = []
    for event in all_events(gateway):
        if event.type == "Account.Opened" and event.data["account_id"] == account_id:
            out.append(event.data["email_enc"])
        if event.type == "User.Added" and event.data["account_id"] == account_id:
            out.append(event.data["email_enc"])
    return out


NOW = int(time.time())  # one instant for every balance read, so none can differ by time


def balance(gateway, account_id: str) -> dict:
    return gateway.balances.balance(account_id, NOW)["pools"]


def test_an_erased_account_reads_erased_everywhere_and_keeps_its_events_and_balance(gateway):
    email = f"erase-me-{new_id('x')[-8:].lower()}@example.com"
    erased, user_email = open_with_user(gateway, email)
    kept, kept_user_email = open_with_user(gateway, "keep-" + email)
    caught_up(gateway)
    assert email not in stored_text(gateway) and user_email not in stored_text(gateway)
    assert gateway.erasure.account_email(erased) == email
    before_events = all_events(gateway)
    before_balance = balance(gateway, erased)

    gateway.erasure.erase_account(erased, REASON, "staff:usr_owner")
    caught_up(gateway)

    # Every code path: the service, the cache-free store of another worker, the master key.
    other_worker = DataKeyStore(gateway.db, SecretBox(MASTER), gateway.clock)
    assert gateway.erasure.account_email(erased) == ERASED
    fields = email_fields(gateway, erased)
    assert len(fields) == 2 and all(f.startswith(f"v2:{erased}:") for f in fields)
    for store in (gateway.data_keys, other_worker):
        assert [store.decrypt(f) for f in fields] == [ERASED, ERASED]
    for field in fields:
        with pytest.raises(InvalidTag):
            SecretBox(MASTER).decrypt(field.rsplit(":", 1)[1])
    with gateway.db.transaction() as cur:
        cur.execute("SELECT wrapped_key, destroyed_at FROM account_data_keys "
                    "WHERE account_id = %s", (erased,))
        wrapped, destroyed_at = cur.fetchone()
        cur.execute("SELECT erased_at FROM accounts WHERE account_id = %s", (erased,))
        assert cur.fetchone()[0] is not None
    assert wrapped is None and destroyed_at is not None
    text = stored_text(gateway)
    assert email not in text and user_email not in text
    assert fields[0].lower() in text and REASON.lower() in text  # the scan sees the events

    # Events: the old ones byte for byte, plus exactly one Account.Erased.
    after_events = all_events(gateway)
    old = {(e.position, e.raw) for e in before_events}
    assert old <= {(e.position, e.raw) for e in after_events}
    new = [e for e in after_events if (e.position, e.raw) not in old]
    assert [(e.type, e.data["reason"], e.data["erased_by"]) for e in new] == \
        [("Account.Erased", REASON, "staff:usr_owner")]

    # Balances stay, and a replay reproduces every read model.
    assert balance(gateway, erased) == before_balance
    reports = verify(gateway.config, gateway.stores, gateway.db)
    assert [(r.table, r.first_difference) for r in reports if not r.match] == []
    assert "account_data_keys" not in {r.table for r in reports}

    # The other account is untouched.
    assert gateway.erasure.account_email(kept) == "keep-" + email
    assert [other_worker.decrypt(f) for f in email_fields(gateway, kept)] == \
        ["keep-" + email, kept_user_email]


def test_a_repeat_a_missing_reason_and_an_unknown_account_are_refused_without_an_event(
        gateway):
    account_id = gateway.accounts.open_account("twice@example.com", "dev", "staff:test")
    caught_up(gateway)
    count = len(all_events(gateway))
    for reason in (None, "", "too short"):
        with pytest.raises(DomainError) as refused:
            gateway.erasure.erase_account(account_id, reason, "staff:usr_owner")
        assert (refused.value.code, refused.value.param) == ("invalid_request", "reason")
    with pytest.raises(DomainError) as unknown:
        gateway.erasure.erase_account("acct_nobody", REASON, "staff:usr_owner")
    assert unknown.value.code == "not_found"
    assert len(all_events(gateway)) == count

    gateway.erasure.erase_account(account_id, REASON, "staff:usr_owner")
    with pytest.raises(DomainError) as again:
        gateway.erasure.erase_account(account_id, REASON, "staff:usr_owner")

    assert again.value.code == "already_erased"
    assert len(all_events(gateway)) == count + 1
    with pytest.raises(DomainError) as late:  # no new personal data for an erased account
        gateway.data_keys.encrypt("late@example.com", account_id)
    assert late.value.code == "already_erased"


def test_older_v1_values_still_decrypt_until_their_account_is_erased(gateway):
    account_id = gateway.accounts.open_account("legacy@example.com", "dev", "staff:test")
    with gateway.db.transaction() as cur:  # as an account opened before data keys existed
        cur.execute("DELETE FROM account_data_keys WHERE account_id = %s", (account_id,))
    legacy = SecretBox(MASTER).encrypt("legacy@example.com")  # as rows written before v2
    assert legacy.startswith("v1:")
    assert gateway.data_keys.decrypt(legacy, account_id) == "legacy@example.com"
    assert gateway.data_keys.decrypt(legacy) == "legacy@example.com"  # e.g. staff values

    gateway.erasure.erase_account(account_id, REASON, "staff:usr_owner")

    fresh = DataKeyStore(gateway.db, SecretBox(MASTER), gateway.clock)
    assert gateway.data_keys.decrypt(legacy, account_id) == ERASED
    assert fresh.decrypt(legacy, account_id) == ERASED
    with gateway.db.transaction() as cur:  # a tombstone row is what marks it erased
        cur.execute("SELECT wrapped_key, destroyed_at FROM account_data_keys "
                    "WHERE account_id = %s", (account_id,))
        wrapped, destroyed_at = cur.fetchone()
    assert wrapped is None and destroyed_at is not None


def test_a_crash_between_the_event_and_the_key_destruction_is_finished_by_the_projector(
        gateway, monkeypatch):
    account_id = gateway.accounts.open_account("crash@example.com", "dev", "staff:test")
    caught_up(gateway)
    opened = email_fields(gateway, account_id)

    def crash(_account_id):
        raise RuntimeError("process died after the event was recorded")

    monkeypatch.setattr(gateway.data_keys, "destroy", crash)
    with pytest.raises(RuntimeError):
        gateway.erasure.erase_account(account_id, REASON, "staff:usr_owner")
    caught_up(gateway)

    fresh = DataKeyStore(gateway.db, SecretBox(MASTER), gateway.clock)
    assert fresh.decrypt(opened[0]) == ERASED
    monkeypatch.undo()
    with pytest.raises(DomainError) as again:
        gateway.erasure.erase_account(account_id, REASON, "staff:usr_owner")
    assert again.value.code == "already_erased"


def test_a_crash_after_the_key_is_created_leaves_an_unused_key_and_no_event(
        gateway, monkeypatch):
    count = len(all_events(gateway))

    def crash(*objs, **kwargs):
        raise RuntimeError("process died before the event was saved")

    monkeypatch.setattr(gateway.stores.accounts, "save", crash)
    with pytest.raises(RuntimeError):
        gateway.accounts.open_account("orphan@example.com", "dev", "staff:test")
    monkeypatch.undo()

    assert len(all_events(gateway)) == count
    with gateway.db.transaction() as cur:
        cur.execute("SELECT COUNT(*) FROM account_data_keys WHERE wrapped_key IS NOT NULL")
        assert cur.fetchone()[0] == 1
