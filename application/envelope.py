"""The event envelope (11.1): who acted, under which command and request, caused by what.

A use case never passes these along by hand. The HTTP layer (or a job) opens an
``Envelope`` in a context variable; whatever events are saved while it is current are
stamped with it. ``asyncio.to_thread`` copies context variables, so commands run off the
event loop see their caller's envelope; the group-commit writer's thread does not, which is
why events are stamped when they are handed to it, on the caller's side.

Stored form: an ``envelope`` attribute of the event, a small JSON object with absent fields
omitted. ``event_id``, ``stream_id``, ``version``, ``position``, ``schema_version`` and
``recorded_at`` are not stored again: they follow from the row (see ``application.feed``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

ACTOR_KINDS = ("user", "staff", "api_key", "system", "stripe", "scheduler")
ATTRIBUTE = "envelope"


@dataclass(frozen=True)
class Actor:
    kind: str
    id: str
    key_prefix: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ACTOR_KINDS:
            raise ValueError(f"unknown actor kind {self.kind!r}")

    def stored(self) -> dict[str, str]:
        out = {"kind": self.kind, "id": self.id}
        if self.key_prefix:
            out["key_prefix"] = self.key_prefix
        return out


@dataclass(frozen=True)
class Envelope:
    actor: Actor
    correlation_id: str | None = None
    command_id: str | None = None
    causation_id: str | None = None
    _stored: dict = field(default_factory=dict, compare=False, repr=False)

    def stored(self) -> dict[str, Any]:
        """The JSON object saved with each event (built once per envelope)."""
        if not self._stored:
            out: dict[str, Any] = {"actor": self.actor.stored()}
            for name in ("correlation_id", "command_id", "causation_id"):
                value = getattr(self, name)
                if value:
                    out[name] = value
            self._stored.update(out)
        return self._stored


SYSTEM = Envelope(Actor("system", "gatewayz"))
_current: ContextVar[Envelope | None] = ContextVar("gatewayz_envelope", default=None)


def current() -> Envelope:
    return _current.get() or SYSTEM


@contextmanager
def acting(envelope: Envelope) -> Iterator[Envelope]:
    """Make ``envelope`` current for the block (a job run, a CLI command, a test)."""
    token = _current.set(envelope)
    try:
        yield envelope
    finally:
        _current.reset(token)


def begin(correlation_id: str) -> None:
    """Start a request's envelope: nobody is authenticated yet, so the actor is the system
    until ``identify`` names the caller. Set in the request's own task, it ends with it."""
    _current.set(Envelope(SYSTEM.actor, correlation_id=correlation_id))


def identify(actor: Actor) -> None:
    """The caller is now known: later events of this request carry it."""
    envelope = _current.get()
    _current.set(Envelope(actor) if envelope is None else
                 replace(envelope, actor=actor, _stored={}))


def update(**fields: str | None) -> None:
    """Record what became known later in a request: the command (from an Idempotency-Key),
    a renamed request id, the event that caused this work. None leaves a field as it was."""
    envelope = current()
    changes = {k: v for k, v in fields.items() if v is not None}
    _current.set(replace(envelope, **changes, _stored={}))


def stamp(events: Iterable[Any], stored: dict[str, Any] | None = None) -> None:
    """Give each event not yet stamped the current envelope (or the ``stored`` one)."""
    stored = stored or current().stored()
    for event in events:
        if ATTRIBUTE not in event.__dict__:
            object.__setattr__(event, ATTRIBUTE, stored)


def stamp_aggregates(objs: Iterable[Any]) -> None:
    """Stamp the pending events of aggregates (or loose events) about to be saved."""
    stored = current().stored()
    for obj in objs:
        if obj is not None:
            pending = getattr(obj, "_pending_events", None)
            stamp(pending if pending is not None else (obj,), stored)


def of(event: Any) -> dict[str, Any]:
    """The stored envelope of a loaded event; events saved before 11.1 get the system's."""
    return event.__dict__.get(ATTRIBUTE) or {"actor": {"kind": "system", "id": "gatewayz"}}
