"""Idempotency rules shared by the HTTP layer and the record store (spec 11.2).

A record per (scope, Idempotency-Key) moves through these states:

- ``in_progress``: claimed by one worker (``claimed_by``, ``claimed_at``) for one ``attempt``;
  a repeat gets 409 ``idempotency_in_progress``. A claim older than ``CLAIM_TTL`` (the hold
  TTL: request cap 600 s + 60 s) or whose worker is known dead is taken over by the next
  claim with the same body, ``attempt`` + 1.
- ``done``: the stored response (2xx/3xx only), replayed with ``Idempotent-Replayed: true``.
  A response that carried a secret is stored with the secret removed (``"key": null,
  "key_redacted": true``): a key is shown once and never stored.
- ``released``: the request ended with no durable effect (a 4xx/5xx error); the key is free
  again and the next claim (any body) starts ``attempt`` + 1.
- ``unknown``: the request failed after it may have taken effect (an unexpected error, or a
  stream cut after output went out); it is never run again under this key and a repeat gets
  409 ``conflict`` saying so, until the record expires.

Records bind a key for ``RETENTION`` (24 h); a key used after that starts a new request
(``attempt`` + 1). Records are reset in place, never deleted, so ``attempt`` only grows and
``command_id(scope, key, attempt)`` never repeats for a new request: a duplicate of one
attempt collides in the event store itself.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

from application.sweeper import HOLD_TTL

CLAIM_TTL: timedelta = HOLD_TTL  # the one place: request cap + 60 s, as for holds
RETENTION = timedelta(hours=24)
_NAMESPACE = uuid.UUID("5b0e6f0c-8a3e-4c61-9d2f-1f6c2b7a9e41")


def command_id(scope: str, key: str, attempt: int = 0) -> str:
    """The command id of one attempt of an idempotent request: uuid5 of scope + key
    (+ attempt when > 0), so a duplicate of the same attempt collides wherever it is used
    as an aggregate or command id."""
    name = f"{scope}\n{key}" if attempt == 0 else f"{scope}\n{key}\n{attempt}"
    return str(uuid.uuid5(_NAMESPACE, name))


def stores_response(status: int) -> bool:
    """Only successful answers are kept; every error (402, 409, 429, 503, 5xx, any 4xx the
    gateway produced before an effect) releases the key instead."""
    return 200 <= status < 400


_worker: tuple[int, str] | None = None


def default_worker_id() -> str:
    """A random id for this process (fresh after a fork), used when none is wired."""
    global _worker
    pid = os.getpid()
    if _worker is None or _worker[0] != pid:
        _worker = (pid, f"proc_{uuid.uuid4().hex}")
    return _worker[1]


def request_id_for(command: str) -> str:
    """The public request id of a command id: ``req_`` + 26 characters (the 128 bits of the
    uuid5 in ULID form), so a keyed request's id has the usual shape (spec 1, 9.8) and a
    duplicate of one attempt still collides."""
    from ulid import ULID

    return f"req_{ULID.from_bytes(uuid.UUID(command).bytes)}"
