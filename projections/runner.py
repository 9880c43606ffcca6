"""The projector: applies new events to every read model, exactly once per position.

Each batch of one context's events is applied to every projection that reads that context
and the tracking positions move in the same transaction, so a crash never applies a
position twice or skips one. Side effects (hold releases, cache invalidation) run after
the commit, and are themselves idempotent.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from application.event_stores import EventStores
from projections.accounts import AccountsProjection
from projections.balances import BalancesProjection
from projections.base import BatchEffects, Projection
from projections.catalog import CatalogProjection
from projections.usage import UsageProjection

log = logging.getLogger("gatewayz.projector")
BATCH = 500
# A projector far behind (a rebuild, a restart) doubles its batches up to this: each batch
# costs a few round trips and a commit whatever its size. Back to BATCH once caught up.
MAX_BATCH = 2_000
STUCK_AFTER_S = 10.0


def poison_candidate(error: BaseException) -> bool:
    """Whether an error may belong to one event rather than to the database being away:
    connection trouble and lock waits are retried, never recorded as a bad event."""
    if isinstance(error, sqlite3.OperationalError | sqlite3.InterfaceError):
        return False
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return True
    return not isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)


def all_projections() -> list[Projection]:
    from projections.access import AccessProjection
    from projections.as_of import AsOfClock
    from projections.audit_keys import AuditKeysProjection
    from projections.audit_trail import AuditTrailProjection
    from projections.catalog_sync import CatalogSyncProjection
    from projections.incidents import IncidentsProjection
    from projections.journal import JournalProjection
    from projections.security import SecurityProjection

    # The audit trail comes last: it names targets from the stream index the others fill.
    return [AsOfClock(), AccountsProjection(), BalancesProjection(), UsageProjection(),
            AccessProjection(), CatalogProjection(), CatalogSyncProjection(),
            IncidentsProjection(), SecurityProjection(), JournalProjection(),
            AuditKeysProjection(), AuditTrailProjection()]


class Projector:
    def __init__(self, stores: EventStores, db: Any,
                 projections: Sequence[Projection] | None = None,
                 after_commit: Callable[[Any, BatchEffects], Any] | None = None,
                 on_foreign_progress: Callable[[str], None] | None = None) -> None:
        self.stores = stores
        self.db = db
        self.projections = list(projections or all_projections())
        self.after_commit = after_commit
        self.positions: dict[str, int] = {}
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0
        self.failures = 0  # events recorded in projection_failures by this process
        self.last_progress = time.monotonic()
        self.on_foreign_progress = on_foreign_progress
        self._foreign_in_batch = False
        self._sizes: dict[str, int] = {}  # context -> events asked for in its next batch

    # -- running --------------------------------------------------------------------------
    def run_until_idle(self, limits: dict[str, int] | None = None,
                       progress: Callable[[int], None] | None = None) -> int:
        """Apply everything recorded so far (or up to ``limits`` per context); ``progress``
        hears the running total after each batch (replay's progress bar)."""
        applied = 0
        for context, app in self.stores.by_context().items():
            while True:
                stop = (limits or {}).get(context)
                size = self._sizes.get(context, BATCH)
                count = self._apply_batch(context, app, stop)
                applied += count
                if progress is not None and count:
                    progress(applied)
                if count < size:
                    break
        return applied

    def _tracked(self, cur: Any, context: str, readers: list[Projection],
                 lock: bool = True) -> dict[str, int]:
        lock_sql = " FOR UPDATE" if lock and self.db.dialect == "postgres" else ""
        if lock_sql:
            # FOR UPDATE locks nothing before a context's first batch has written its rows,
            # so projectors of several workers also queue on a per-context advisory lock.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || "
                        "':projector:' || %s))", (context,))
        cur.execute("SELECT projection, position FROM projection_tracking WHERE context = %s"
                    + lock_sql, (context,))
        rows = dict(cur.fetchall())
        return {p.name: rows.get(p.name, 0) for p in readers}

    def _apply_batch(self, context: str, app: Any, stop: int | None) -> int:
        readers = [p for p in self.projections if context in p.contexts]
        if not readers:
            return 0
        with self.db.transaction() as cur:
            start = min(self._tracked(cur, context, readers, lock=False).values())
        known = self.positions.get(context)
        if known is not None and start > known and self.on_foreign_progress is not None:
            # Another process projected events this one never saw: the side effects they
            # imply (hold releases, cache invalidations) did not happen here.
            self.on_foreign_progress(context)
        if stop is not None and start >= stop:
            self._publish_position(context, start)
            return 0
        # Events are read before the read-model transaction opens: on SQLite both live in one
        # file, and holding its write lock while waiting for the event store's connection
        # pool deadlocks with a command that holds the pool's writer and waits for the file.
        size = self._sizes.get(context, BATCH)
        notes = app.recorder.select_notifications(start=start + 1, limit=size, stop=stop)
        self._sizes[context] = min(size * 2, MAX_BATCH) if len(notes) == size else BATCH
        if not notes:
            self._publish_position(context, start)
            self.last_progress = time.monotonic()  # caught up counts as progress
            return 0
        last = notes[-1].id
        try:
            effects_state = self._commit_batch(context, app, readers, notes, guarded=False)
        except Exception as error:
            if not poison_candidate(error):
                raise
            # One event no projection can apply must not stop every balance from moving:
            # apply the batch again event by event, recording the ones that fail.
            log.warning("batch of %s failed (%s); retrying event by event", context, error)
            effects_state = self._commit_batch(context, app, readers, notes, guarded=True)
        if effects_state is not None:
            effects_state()
        if self._foreign_in_batch and self.on_foreign_progress is not None:
            self.on_foreign_progress(context)  # another projector got some of these first
        self._publish_position(context, last)
        self.last_progress = time.monotonic()
        return len(notes)

    def _commit_batch(self, context: str, app: Any, readers: list[Projection], notes: list,
                      guarded: bool) -> Callable[[], None] | None:
        last = notes[-1].id
        effects = BatchEffects()
        # batch: on PostgreSQL the batch's writes go out together, not one round trip each.
        with self.db.transaction(batch=True) as cur:
            # Re-read under the lock: another projector may have moved on meanwhile.
            tracked = self._tracked(cur, context, readers)
            self._foreign_in_batch = min(tracked.values()) >= notes[0].id
            effects.context, effects.guarded = context, guarded
            for note in notes:
                effects.note = note
                if guarded:
                    self._apply_guarded(cur, context, app, readers, tracked, note, effects)
                    continue
                event = app.mapper.to_domain_event(note)
                for projection in readers:
                    if note.id > tracked[projection.name]:
                        projection.apply(cur, event, effects)
            for projection in readers:  # writes a projection holds back until the batch ends
                end_batch = getattr(projection, "end_batch", None)
                if end_batch is not None:
                    end_batch(cur, effects)
            for projection in readers:
                cur.execute(
                    "INSERT INTO projection_tracking (projection, context, position) "
                    "VALUES (%s, %s, %s) ON CONFLICT (projection, context) "
                    "DO UPDATE SET position = excluded.position",
                    (projection.name, context, max(last, tracked[projection.name])))
            if self.after_commit is not None:
                # Reads the rows this transaction wrote, before anyone else can change them.
                return self.after_commit(cur, effects)
        return None

    def _apply_guarded(self, cur: Any, context: str, app: Any, readers: list[Projection],
                       tracked: dict[str, int], note: Any, effects: BatchEffects) -> None:
        for projection in readers:
            if note.id <= tracked[projection.name]:
                continue
            cur.execute("SAVEPOINT one_event")
            try:
                projection.apply(cur, app.mapper.to_domain_event(note), effects)
                cur.flush()  # so a queued write's error belongs to this event
            except Exception as error:
                if not poison_candidate(error):
                    raise
                cur.execute("ROLLBACK TO SAVEPOINT one_event")
                self.failures += 1
                log.error("%s could not apply %s event %d (%s): recorded and skipped",
                          projection.name, context, note.id, error)
                cur.execute(
                    "INSERT INTO projection_failures (context, position, projection, "
                    "event_type, error) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (context, note.id, projection.name, note.topic[-200:],
                     f"{type(error).__name__}: {error}"[:500]))
            cur.execute("RELEASE SAVEPOINT one_event")

    def _publish_position(self, context: str, position: int) -> None:
        with self._changed:
            if position > self.positions.get(context, -1):
                self.positions[context] = position
                self._changed.notify_all()

    def health(self) -> str | None:
        """None when healthy; else why not: the thread died, or events wait and none was
        applied for STUCK_AFTER_S."""
        if self._thread is None:
            return None  # not projecting in this process
        if not self._thread.is_alive():
            return "the projector thread is not running"
        if time.monotonic() - self.last_progress <= STUCK_AFTER_S:
            return None
        behind = [c for c, top in self.stores.max_positions().items()
                  if top > self.positions.get(c, 0)]
        if behind:
            return f"the projector applied nothing for {STUCK_AFTER_S:.0f} s while " \
                   f"events wait ({', '.join(behind)})"
        return None

    def wake(self, *_: Any) -> None:
        self._wake.set()

    def wait_for(self, context: str, position: int, timeout: float = 5.0) -> bool:
        """Block until this projector has applied ``position`` of ``context`` (read-your-writes)."""
        if self._thread is None or self._stop.is_set():  # no thread (any more): project here
            self.run_until_idle()
            return True
        self.wake()
        with self._changed:
            return self._changed.wait_for(
                lambda: self.positions.get(context, 0) >= position, timeout=timeout)

    def start(self, poll_interval: float = 0.05) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                self._wake.wait(poll_interval)
                self._wake.clear()
                try:
                    self.run_until_idle()
                except Exception:  # keep projecting; the failure is logged and counted
                    self.errors += 1
                    log.exception("projection batch failed; will retry")
                    self._stop.wait(0.5)

        self._thread = threading.Thread(target=loop, name="projector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
