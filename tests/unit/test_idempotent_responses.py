"""What ``idempotent()`` stores (spec 11.2): only successful answers, a stream only once it
has ended, and never before; every error answer releases the key."""

from __future__ import annotations

import asyncio

import pytest
from litestar import Response
from litestar.response import Stream

from adapters.idempotency_sql import SqlIdempotencyStore
from adapters.persistence.database import open_database
from adapters.persistence.migrate import migrate
from adapters.persistence.store_config import StoreConfig
from entrypoints.http.idempotent import idempotent

SCOPE, KEY, RAW = "account:acct_1", "key-1", b'{"model":"m"}'


@pytest.fixture
def store(tmp_path):
    db = open_database(StoreConfig.sqlite(str(tmp_path / "events.sqlite")))
    migrate(db)
    yield SqlIdempotencyStore(db)
    db.close()


def state(store) -> tuple:
    with store.db.transaction() as cur:
        cur.execute("SELECT state, status, content_type, body FROM idempotency_records")
        return cur.fetchone()


def call(store, answer) -> tuple[Response, int]:
    calls = []

    async def produce(*_command_id):
        calls.append(1)
        return answer()

    response = asyncio.run(idempotent(store, SCOPE, KEY, RAW, produce))
    return response, len(calls)


@pytest.mark.parametrize("status", [400, 402, 404, 409, 422, 429, 499, 500, 502, 503])
def test_an_error_answer_is_never_stored_and_releases_the_key(store, status):
    _, ran = call(store, lambda: Response(content=b'{"error":{}}', status_code=status))
    again, ran_again = call(store, lambda: Response(content=b'{"ok":true}', status_code=200))
    replay, ran_replay = call(store, lambda: Response(content=b"never", status_code=200))

    assert (ran, ran_again, ran_replay) == (1, 1, 0)
    assert again.headers.get("idempotent-replayed") is None
    assert replay.status_code == 200 and replay.content == b'{"ok":true}'
    assert replay.headers["idempotent-replayed"] == "true"


def test_a_stream_is_stored_when_it_ends_with_its_bytes_and_not_before(store):
    events = [b"data: {\"n\":1}\n\n", b"data: [DONE]\n\n"]

    async def chunks():
        for event in events:
            yield event

    response, _ = call(store, lambda: Stream(chunks(), status_code=200,
                                                  media_type="text/event-stream"))
    before = state(store)

    async def drain() -> bytes:
        return b"".join([chunk async for chunk in response.iterator])

    sent = asyncio.run(drain())
    replay, ran = call(store, lambda: Response(content=b"never"))

    assert before == ("in_progress", None, None, None)
    assert sent == b"".join(events)
    assert state(store) == ("done", 200, "text/event-stream", sent.decode())
    assert ran == 0 and replay.content == sent
    assert replay.media_type == "text/event-stream"
