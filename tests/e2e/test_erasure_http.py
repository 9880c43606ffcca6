"""POST /admin/accounts/{id}/erase (11.12): owner only, reason required, 409 on a repeat."""

from __future__ import annotations

import uuid

from adapters.data_keys import ERASED
from domain.ids import new_id
from domain.user import User
from e2e.support import assert_error

REASON = "customer asked for erasure under GDPR article 17"


def admin_token(served) -> str:
    """A staff token of a user with role admin (not owner), as an owner would add one."""
    gw = served.gateway
    user_id = new_id("usr")
    user = User(user_id=user_id, account_id=None, role="admin",
                email_enc=gw.data_keys.encrypt("admin@example.com", user_id), actor="staff:test")
    token = gw.access._issue_staff_token(user)
    gw.projector.wait_for("access", gw.stores.access.save(user)[-1].notification.id)
    gw.access.forget_cached()
    return token


def erase(served, account_id: str, token: str | None = None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return served.admin("POST", f"/admin/accounts/{account_id}/erase",
                        headers=headers | kwargs.pop("headers", {}), **kwargs)


def test_an_owner_erases_an_account_once_and_its_email_reads_erased(served):
    account_id = served.open_account(credit_micros=1_000_000)

    admin = erase(served, account_id, admin_token(served), json={"reason": REASON})
    no_reason = erase(served, account_id, json={})
    short = erase(served, account_id, json={"reason": "because"})
    done = erase(served, account_id, json={"reason": REASON})
    again = erase(served, account_id, json={"reason": REASON})

    assert_error(admin, 403, "forbidden")
    assert_error(no_reason, 400, "invalid_request", "reason")
    assert_error(short, 400, "invalid_request", "reason")
    assert done.status_code == 200, done.text
    assert done.json() == {"account_id": account_id, "erased": True}
    assert_error(again, 409, "already_erased")
    assert served.gateway.erasure.account_email(account_id) == ERASED


def test_an_unknown_account_is_404_and_an_idempotent_repeat_replays_200(served):
    assert_error(erase(served, "acct_unknown", json={"reason": REASON}), 404, "not_found")
    account_id = served.open_account()
    key = {"Idempotency-Key": uuid.uuid4().hex}

    first = erase(served, account_id, json={"reason": REASON}, headers=key)
    replay = erase(served, account_id, json={"reason": REASON}, headers=key)

    assert first.status_code == replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == {"account_id": account_id, "erased": True}
