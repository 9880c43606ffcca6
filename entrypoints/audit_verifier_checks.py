"""The entry-by-entry checks of spec 11.8 over parsed or raw bundle records, in one pass."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from entrypoints.audit_verifier_canonical import (
    Z_TIME,
    CanonicalError,
    canonical,
    entry_hash,
    event_digest,
    minus,
)
from entrypoints.audit_verifier_checkpoints import (
    Checkpoint,
    Failure,
    Unverifiable,
    parse_record,
)
from entrypoints.audit_verifier_events import (
    DUPLICATE,
    NEVER,
    NOT_AUDITED,
    EventIndex,
    actor_bytes,
    expected_fields,
    match_key,
)
from entrypoints.audit_verifier_lines import LineParser

# Spec 11.7: a checkpoint every 1,000 entries or every hour; 10 minutes of slack for the
# hourly job and clock skew.
GAP_ENTRIES = 1000
GAP_TIME = timedelta(hours=1, minutes=10)


class EntryChecker:
    """Checks 1, 2, 4 (head hashes), 6 and the gap rule, fed one entry at a time in order."""

    def __init__(self, index: EventIndex, find_event: Callable[[str, int], Any],
                 checkpoints: list[Checkpoint], *, start: int, anchor: str | None,
                 created_at: str, chain_only: bool, trail_start: str = "") -> None:
        self.index, self.find_event = index, find_event
        self.seq, self.previous_hash, self.chain_only = start, anchor, chain_only
        self.start = start
        self.checkpoints = [] if chain_only else checkpoints
        self.at_seq = {c.seq: c for c in self.checkpoints}
        self.deadlines = [minus(c.created_at, GAP_TIME) for c in self.checkpoints]
        self.created_at = created_at
        # Events already over an hour old when the first signing key came into use entered
        # the chain when the trail was introduced (an older store): no checkpoint could
        # have covered them within the hour. Younger ones are held to the rule.
        self.trail_start, self.before_trail = trail_start, 0
        self.trail_cutoff = minus(trail_start, GAP_TIME) if trail_start else ""
        self.open_deadline = minus(created_at, GAP_TIME)
        self.next_checkpoint = bisect_left([c.seq for c in self.checkpoints], start)
        self.cursor = dict.fromkeys(index.audited, 0)
        self.last_position: dict[str, int] = {}
        self.checked = 0
        self.parser = LineParser()

    def feed(self, record: Any) -> Failure | None:
        """Check the entry expected at ``self.seq``; its first failure, if any."""
        s = self.seq
        entry, line, plain = parse_record(record, f"entry at seq {s}", self.parser)
        try:
            # In the order of spec 11.8 (check 3 needs no entries); each later check may
            # rely on the earlier ones having passed.
            failure = (self._hash(entry, line, plain, s) or self._link(entry, s)
                       or self._head(entry, s) or self._event(entry, line, plain, s)
                       or self._gap(entry, s))
        except CanonicalError as exc:
            raise Unverifiable(f"entry at seq {s}: {exc}") from None
        self.previous_hash = entry.get("hash")
        self.seq += 1
        self.checked += 1
        return failure

    def _hash(self, entry: dict[str, Any], line: str | None, plain: bool, s: int
              ) -> Failure | None:
        computed = entry_hash(entry, line, plain)
        if computed is None:
            return Failure(s, "entry_hash", "prev_hash is not 64 lowercase hex digits")
        if entry.get("hash") != computed:
            return Failure(s, "entry_hash", f"stored hash {str(entry.get('hash'))[:64]!r} "
                           f"does not recompute (computed {computed})")
        return None

    def _link(self, entry: dict[str, Any], s: int) -> Failure | None:
        seq = entry.get("seq")
        if type(seq) is not int or seq != s:
            return Failure(s, "chain_link", f"expected seq {s}, found {seq!r}")
        if self.previous_hash is not None and entry.get("prev_hash") != self.previous_hash:
            return Failure(s, "chain_link", f"prev_hash does not equal the hash of seq {s - 1}")
        return None

    def _head(self, entry: dict[str, Any], s: int) -> Failure | None:
        checkpoint = self.at_seq.get(s)
        if checkpoint is not None and checkpoint.head_hash != entry["hash"]:
            return Failure(s, "checkpoint_link", f"checkpoint head_hash {checkpoint.head_hash} "
                           f"differs from the chain's hash at seq {s} ({entry['hash']})")
        return None

    def _event(self, entry: dict[str, Any], line: str | None, plain: bool, s: int
               ) -> Failure | None:
        context, position = entry.get("context"), entry.get("position")
        if type(context) is not str or type(position) is not int:
            return Failure(s, "event_match", "entry has no string context and integer position")
        last = self.last_position.get(context)
        audited = self.index.audited.get(context, [])
        if last is None and self.start > 1:
            # Verifying from a later seq: events before the range are out of scope.
            self.cursor[context] = bisect_left(audited, position)
        if last is not None and position <= last:
            return Failure(s, "event_match", f"position {context}/{position} is not after "
                           f"the previous entry's {context}/{last}")
        self.last_position[context] = position
        at = self.cursor.get(context, 0)
        if at < len(audited) and audited[at] < position:
            return self._missing(context, audited[at], s)
        if at < len(audited) and audited[at] == position:
            self.cursor[context] = at + 1
        key = self.index.key(context, position)
        if key is None:
            return Failure(s, "event_match", f"no event at {context}/{position}")
        if key == DUPLICATE:
            return Failure(s, "event_match", f"more than one event at {context}/{position}")
        if key == NOT_AUDITED:
            return Failure(s, "event_match", f"the event at {context}/{position} is not audited")
        actor = actor_bytes(entry.get("actor"), line, plain)
        recorded = entry.get("recorded_at")
        if type(recorded) is not str or not Z_TIME.fullmatch(recorded):
            recorded = None
        found = match_key(entry.get("event_id"), entry.get("event_type"), recorded,
                           entry.get("event_digest"), actor)
        if found != key or found == NEVER:
            return Failure(s, "event_match", self._mismatch(entry, context, position))
        return None

    def _missing(self, context: str, position: int, s: int) -> Failure:
        key = self.index.by_context[context][position]
        what = "more than one event at" if key == DUPLICATE else "no entry for the audited event at"
        return Failure(s, "event_match", f"{what} {context}/{position}")

    def _mismatch(self, entry: dict[str, Any], context: str, position: int) -> str:
        """Which field differs; only for the failure reported, so the event is read again."""
        record = self.find_event(context, position)
        if record is None:  # events given as a one-pass iterable cannot be read again
            return f"entry does not match the event at {context}/{position}"
        event, line, plain = parse_record(record, "event", self.parser)
        expected = expected_fields(event, event_digest(event, line, plain))
        if expected["event_digest"] is None:
            return f"the event at {context}/{position} lacks a field of the event line"
        if expected["recorded_at"] is None:
            return f"the event at {context}/{position} has no timestamp with an offset"
        for name, want in expected.items():
            got = entry.get(name)
            if name == "actor" and type(got) is dict and type(want) is dict:
                same = canonical(got) == canonical(want)
            else:
                same = got == want
            if not same:
                return f"{name} is {got!r}, but the event at {context}/{position} gives {want!r}"
        return f"entry does not match the event at {context}/{position}"

    def _gap(self, entry: dict[str, Any], s: int) -> Failure | None:
        if self.chain_only:
            return None
        checkpoints, i = self.checkpoints, self.next_checkpoint
        while i < len(checkpoints) and checkpoints[i].seq < s:
            i += 1
        self.next_checkpoint = i
        previous = checkpoints[i - 1].seq if i else self.start - 1
        recorded = entry["recorded_at"]  # a valid Z time, or check 6 would have failed
        if recorded < self.trail_cutoff:
            self.before_trail += 1
            recorded = self.trail_start  # the hour rule counts from the trail's start
        if i < len(checkpoints):
            following = checkpoints[i]
            if s - previous > GAP_ENTRIES:
                return Failure(s, "checkpoint_gap", f"more than {GAP_ENTRIES} entries after "
                               f"checkpoint {previous} without a checkpoint")
            if recorded < self.deadlines[i]:
                return Failure(s, "checkpoint_gap", f"recorded at {recorded}, but first "
                               f"covered by checkpoint {following.seq} created at "
                               f"{following.created_at}, more than 1 h 10 min later")
            return None
        if s - previous >= GAP_ENTRIES:
            return Failure(s, "checkpoint_gap", f"{GAP_ENTRIES} entries after checkpoint "
                           f"{previous} and no checkpoint yet")
        if recorded <= self.open_deadline:
            return Failure(s, "checkpoint_gap", f"recorded at {recorded} and not covered by "
                           "a checkpoint 1 h 10 min or more later, when the bundle was created")
        return None

    def finish(self) -> Failure | None:
        """After the last entry: check 5, then audited events left without an entry."""
        end = self.seq  # the seq the next entry would have had
        if self.checkpoints and self.checkpoints[-1].seq >= end:
            latest = self.checkpoints[-1]
            # Checkpoints newer than the bundle are not ignored: the manifest is unsigned,
            # and backdating it would then hide a truncation. The detail says so instead.
            newer = (f"; it was created at {latest.created_at}, after the bundle "
                     f"({self.created_at}): if the bundle is older, export a fresh one"
                     if latest.created_at > self.created_at else "")
            return Failure(end, "checkpoint_extends", f"the chain ends at seq {end - 1}, but "
                           f"checkpoint {latest.seq} ({latest.head_hash[:16]}...) requires it "
                           f"to reach that seq{newer}")
        for context, audited in self.index.audited.items():
            at = self.cursor.get(context, 0)
            if self.start > 1 and context not in self.last_position:
                continue  # no entry in range for this context: nothing places its events
            if at < len(audited):
                return self._missing(context, audited[at], end)
        return None
