"""Stored Responses (9.4) on every backend: read back only by their own account, gone after
30 days or a delete, unreadable once the account is erased (the content is under its data
key), and purged by the sweep once expired."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.clock import FrozenClock
from adapters.responses_sql import SqlResponseStore
from application.responses_store import ResponsesService
from domain.errors import DomainError

STAFF = "usr_response-test"


@pytest.fixture
def service(gateway):
    clock = FrozenClock()
    return ResponsesService(SqlResponseStore(gateway.db, gateway.data_keys, clock), clock), clock


def _account(gateway) -> str:
    return gateway.accounts.open_account("someone@example.com", "dev", STAFF)


def _remember(service, account_id: str, response_id: str, text: str = "hi") -> dict:
    answer = {"id": response_id, "object": "response", "output": [
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": text}]}]}
    service.remember(account_id, {"model": "m", "input": "hello"}, answer, [])
    return answer


def test_a_stored_response_is_read_back_and_continued_only_by_its_account(gateway, service):
    svc, _ = service
    owner, stranger = _account(gateway), _account(gateway)
    answer = _remember(svc, owner, "resp_1", "hello back")

    assert svc.get(owner, "resp_1") == answer
    assert svc.history(owner, "resp_1") == [{"role": "user", "content": "hello"},
                                            {"role": "assistant", "content": "hello back"}]
    for call in (lambda: svc.get(stranger, "resp_1"),
                 lambda: svc.history(stranger, "resp_1"),
                 lambda: svc.delete(stranger, "resp_1")):
        with pytest.raises(DomainError) as raised:
            call()
        assert raised.value.code == "not_found"
    assert svc.get(owner, "resp_1") == answer  # the stranger's delete removed nothing


def test_store_false_keeps_nothing(gateway, service):
    svc, _ = service
    owner = _account(gateway)

    svc.remember(owner, {"model": "m", "input": "x", "store": False},
                 {"id": "resp_2", "object": "response", "output": []}, [])

    with pytest.raises(DomainError):
        svc.get(owner, "resp_2")


def test_after_thirty_days_a_response_is_gone_and_purged(gateway, service):
    svc, clock = service
    owner = _account(gateway)
    _remember(svc, owner, "resp_3")

    clock.advance(timedelta(days=30).total_seconds() - 1)
    assert svc.get(owner, "resp_3")["id"] == "resp_3"
    assert svc.purge_expired() == 0
    clock.advance(2)

    with pytest.raises(DomainError):
        svc.get(owner, "resp_3")
    assert svc.purge_expired() == 1


def test_an_erased_accounts_responses_cannot_be_read(gateway, service):
    svc, _ = service
    owner = _account(gateway)
    _remember(svc, owner, "resp_4", "private words")

    gateway.erasure.erase_account(owner, "customer asked to be forgotten", STAFF)

    with pytest.raises(DomainError):
        svc.get(owner, "resp_4")
    with gateway.db.transaction() as cur:
        cur.execute("SELECT content FROM stored_responses WHERE response_id = 'resp_4'")
        assert b"private" not in cur.fetchone()[0].encode()
