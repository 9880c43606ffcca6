"""Stored Responses (9.4): kept 30 days unless ``store`` is false, read back by id, deleted
on request, continued by ``previous_response_id`` only within the same account."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from application.ports import Clock
from application.translate.responses.request import turn_messages
from domain.errors import DomainError

RETENTION = timedelta(days=30)


class ResponseStore(Protocol):
    def save(self, account_id: str, response_id: str, record: dict, expires: Any) -> None: ...
    def get(self, account_id: str, response_id: str) -> dict | None: ...
    def delete(self, account_id: str, response_id: str) -> bool: ...
    def purge_expired(self) -> int: ...


def _missing(param: str | None = None) -> DomainError:
    # Another account's response is answered exactly as a missing one (9.4).
    return DomainError("not_found", "no stored response has this id", param=param)


class ResponsesService:
    def __init__(self, store: ResponseStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def history(self, account_id: str, previous_id: Any) -> list[dict]:
        """The conversation up to and including a stored response, as chat messages."""
        if not isinstance(previous_id, str) or not 1 <= len(previous_id) <= 200:
            raise DomainError("invalid_request", "previous_response_id must be a response id",
                              param="previous_response_id")
        record = self.store.get(account_id, previous_id)
        if record is None:
            raise _missing("previous_response_id")
        return list(record.get("messages") or [])

    def remember(self, account_id: str, body: dict, response: dict,
                 history: list[dict]) -> None:
        if body.get("store") is False or not isinstance(response.get("id"), str):
            return
        messages = history + turn_messages(body, response)
        self.store.save(account_id, response["id"], {"response": response,
                                                     "messages": messages},
                        self.clock.now() + RETENTION)

    def get(self, account_id: str, response_id: str) -> dict:
        record = self.store.get(account_id, response_id)
        if record is None:
            raise _missing()
        return record["response"]

    def delete(self, account_id: str, response_id: str) -> dict:
        if not self.store.delete(account_id, response_id):
            raise _missing()
        return {"id": response_id, "object": "response", "deleted": True}

    def purge_expired(self) -> int:
        """Drop responses past their 30 days (reads already ignore them)."""
        return self.store.purge_expired()
