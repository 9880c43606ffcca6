"""What discovery sync last learnt from each provider's model listing (spec 5.2).

One ``ProviderListing`` stream per provider. Each sync run appends the difference between
the provider's previous listing and the new one (``Synced``) or the reason it failed
(``SyncFailed``); both carry the run id. The aggregate's state is the listing as of its last
successful run, rebuilt from its own events, so a run's diff never depends on a read model
that may lag or be rebuilt.

Entries are plain JSON objects (the stored form): native_id, model_id, name,
context_length, max_output_tokens, input_modalities, output_modalities, capabilities (lists
or None when the listing does not say) and prices (USD per million tokens as decimal
strings, or None when unknown), plus ``huggingface_id`` only when the listing names one
(5.6; absent rather than None, so entries recorded before it existed still compare equal
and the first run after it lands changes only the models that have one). ``changed``
carries the whole new entry, not a patch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.ids import stream_uuid
from domain.model_names import CANONICAL

# One event holds at most this many entries (added + changed + removed): a listing of
# thousands of models becomes several events of one run instead of one huge row.
CHUNK = 500
MAX_ERROR = 500
MAX_MODEL_ID = 200
RESERVED_ORG = "gatewayz"  # the built-in provider's own models (gatewayz/echo)
ENTRY_FIELDS = ("native_id", "model_id", "name", "context_length", "max_output_tokens",
                "input_modalities", "output_modalities", "capabilities", "prices")

Entry = dict  # one listed model, with the ENTRY_FIELDS keys
Diff = tuple[list[Entry], list[Entry], list[str]]  # added, changed, removed model ids


def canonical_for(native: str, dialect: str, family: str | None,
                  known: Mapping[str, str]) -> str | None:
    """The canonical id of a listed native id, or None when no rule names one.

    ``known`` maps this provider's native ids (lower case) to the canonical ids the seed or
    an admin gave them: Anthropic lists ``claude-sonnet-4-5`` which the seed calls
    ``anthropic/claude-sonnet-4.5``, and a second id for it would split one model in two.
    """
    lowered = native.lower()
    if lowered in known:
        return known[lowered]
    if CANONICAL.match(lowered):
        candidate = lowered
    elif dialect == "anthropic":
        candidate = f"anthropic/{lowered}"
    elif dialect == "openai" and family:
        candidate = f"{family}/{lowered}"  # a vendor's own API: its family is the org
    else:
        return None  # a bare id of a host serving many orgs: whose model is it?
    if len(candidate) > MAX_MODEL_ID or not CANONICAL.match(candidate) \
            or candidate.split("/", 1)[0] == RESERVED_ORG:
        return None
    return candidate


def entries_of(models: list[Any], dialect: str, family: str | None,
               known: Mapping[str, str]) -> tuple[dict[str, Entry], int]:
    """Listed models (the listing adapter's ListedModel) as entries by canonical id, and how
    many were skipped: no canonical id, or a second native id for one canonical id (the
    first listed wins, so the listing's order decides, not chance)."""
    out: dict[str, Entry] = {}
    skipped = 0
    for m in models:
        model_id = canonical_for(m.native_id, dialect, family, known)
        if model_id is None or model_id in out:
            skipped += 1
            continue
        out[model_id] = {
            "native_id": m.native_id, "model_id": model_id, "name": m.name,
            "context_length": m.context_length, "max_output_tokens": m.max_output_tokens,
            "input_modalities": list(m.input_modalities) if m.input_modalities else None,
            "output_modalities": list(m.output_modalities) if m.output_modalities else None,
            "capabilities": sorted(m.capabilities) if m.capabilities is not None else None,
            "prices": dict(m.prices) if m.prices is not None else None,
            **({"huggingface_id": m.huggingface_id}
               if getattr(m, "huggingface_id", None) else {})}
    return out, skipped


def diff(previous: Mapping[str, Entry], current: Mapping[str, Entry]) -> Diff:
    """What turns ``previous`` into ``current`` (both model id -> entry), in id order so the
    events of a run do not depend on the order a provider lists its models in."""
    added = [current[m] for m in sorted(current) if m not in previous]
    changed = [current[m] for m in sorted(current)
               if m in previous and previous[m] != current[m]]
    removed = sorted(m for m in previous if m not in current)
    return added, changed, removed


def applied(previous: Mapping[str, Entry], added: list[Entry], changed: list[Entry],
            removed: list[str]) -> dict[str, Entry]:
    """``previous`` after one diff: the inverse of ``diff`` (tested as a property)."""
    out = dict(previous)
    for model_id in removed:
        out.pop(model_id, None)
    for entry in (*added, *changed):
        out[entry["model_id"]] = entry
    return out


def chunks(added: list[Entry], changed: list[Entry], removed: list[str],
           size: int = CHUNK) -> Iterator[Diff]:
    """The diff cut into parts of at most ``size`` entries; always at least one part, so a
    run that changed nothing is still recorded (it is the provider's last success)."""
    items = [("a", e) for e in added] + [("c", e) for e in changed] + [("r", m) for m in removed]
    for start in range(0, max(len(items), 1), size):
        part = items[start:start + size]
        yield ([e for k, e in part if k == "a"], [e for k, e in part if k == "c"],
               [m for k, m in part if k == "r"])


class ProviderListing(Aggregate):
    class Opened(Aggregate.Created):
        provider: str

    class Synced(Aggregate.Event):
        """A successful listing: the changes since the last success (one run may span
        several of these, all with its run id, saved together)."""

        run_id: str
        added: list
        changed: list
        removed: list
        listed: int  # models the run mapped, whichever part of the run this is
        at: str

    class SyncFailed(Aggregate.Event):
        """A listing that must not change the catalog (error, timeout, empty): the last
        good models stay."""

        run_id: str
        error: str
        at: str

    @staticmethod
    def create_id(provider: str, **_: object):
        return stream_uuid(f"provider-listing:{provider}")

    @event(Opened)
    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.models: dict[str, Entry] = {}
        self.last_run_at: str | None = None  # success or failure, for spacing runs out
        self.last_success_at: str | None = None

    @event(Synced)
    def _synced(self, run_id: str, added: list, changed: list, removed: list, listed: int,
                at: str) -> None:
        self.models = applied(self.models, added, changed, removed)
        self.last_run_at = self.last_success_at = at

    @event(SyncFailed)
    def _failed(self, run_id: str, error: str, at: str) -> None:
        self.last_run_at = at

    def record(self, run_id: str, current: Mapping[str, Entry], at: str) -> Diff:
        """Append the events of a successful run whose listing is ``current``."""
        added, changed, removed = diff(self.models, current)
        for part in chunks(added, changed, removed):
            self._synced(run_id, *part, len(current), at)
        return added, changed, removed

    def fail(self, run_id: str, error: str, at: str) -> None:
        self._failed(run_id, error[:MAX_ERROR], at)
