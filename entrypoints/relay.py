"""Kafka relay (spec 11.11): publish every committed event, in order, at least once.

Each bounded context's notification log is the outbox: it shows committed events only, in
commit order, so the relay never publishes what a rollback could take back. Per context the
relay reads from its own committed position (table ``relay_positions``), publishes a batch,
waits until Kafka acknowledged all of it, and only then moves the position. A crash between
the two re-sends that batch; consumers de-duplicate by ``event_id``. Records of one stream
share a key, hence a partition, and the producer keeps their order.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from application.feed import published_notification
from entrypoints.relay_audit import AUDIT, AuditEntrySource, entry_message
from entrypoints.relay_topics import DEFAULT_PREFIX, message_of

log = logging.getLogger("gatewayz.relay")

BATCH = 500
POLL_INTERVAL_S = 0.1
STUCK_AFTER_S = 30.0
class EventPublisher(Protocol):
    def publish(self, topic: str, key: bytes, value: bytes,
                headers: list[tuple[str, bytes]]) -> None: ...
    def flush(self) -> None: ...
    def close(self, timeout: float = 5.0) -> None: ...


class KafkaRelay:
    """Publishes each context's notification log from its committed position."""

    def __init__(self, stores: Any, db: Any, publisher_factory: Callable[[], EventPublisher],
                 prefix: str = DEFAULT_PREFIX, batch: int = BATCH) -> None:
        self.stores = stores
        self.db = db
        self.publisher_factory = publisher_factory
        self.prefix = prefix
        self.batch = batch
        self._publisher: EventPublisher | None = None
        self._audit = AuditEntrySource(db)  # chained entries go out beside the events
        self._known: dict[str, int] = {}  # last position read or saved, per context
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.published = 0  # records acknowledged by Kafka in this process (duplicates too)
        self.entries_published = 0  # audit entries, likewise
        self.errors = 0
        self.last_error: str | None = None
        self.last_progress = time.monotonic()

    # -- one pass ---------------------------------------------------------------------------
    def run_until_idle(self) -> int:
        """Publish everything committed so far (that no other relay is publishing)."""
        sent = 0
        # One batch per context per round, so a backlog in one context never starves another.
        busy = [*self.stores.by_context().items(), (AUDIT, self._audit)]
        while busy:
            counts = [(context, app, self._drain(context, app)) for context, app in busy]
            # Events only: audit entries are counted apart (entries_published).
            sent += sum(count for context, _, count in counts if context != AUDIT)
            busy = [(context, app) for context, app, count in counts if count >= self.batch]
        self.last_progress = time.monotonic()
        return sent

    def _drain(self, context: str, app: Any) -> int:
        """Publish one batch of ``context``; returns how many events it held."""
        known = self._known.get(context)
        if known is not None and (app.recorder.max_notification_id() or 0) <= known:
            return 0  # idle polls touch only the event store, never the read-model database
        if self.db.dialect == "postgres":
            # The transaction holds a per-context advisory lock while the batch is in flight:
            # a second relay (another worker, `gatewayz relay`) skips the context instead of
            # sending the same batch again. A killed relay's lock dies with its connection.
            with self.db.transaction() as cur:
                cur.execute("SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || "
                            "':relay:' || %s))", (context,))
                if not cur.fetchone()[0]:
                    return 0
                count, last = self._send(context, app, self._position(cur, context))
                if count:
                    self._save(cur, context, last)
            self._known[context] = last
            return count
        # SQLite: no transaction stays open across the network (it would hold the read-model
        # file's write lock, stalling the projector); one relay per SQLite file is the norm.
        with self.db.transaction() as cur:
            start = self._position(cur, context)
        count, last = self._send(context, app, start)
        if count:
            with self.db.transaction() as cur:
                self._save(cur, context, last)
        self._known[context] = last
        return count

    def _send(self, context: str, app: Any, start: int) -> tuple[int, int]:
        notes = app.recorder.select_notifications(start=start + 1, limit=self.batch)
        if not notes:
            return 0, start
        if self._publisher is None:
            self._publisher = self.publisher_factory()
        publisher = self._publisher
        for note in notes:
            publisher.publish(*(entry_message(note, self.prefix) if context == AUDIT else
                                message_of(published_notification(context, app, note),
                                           self.prefix)))
        publisher.flush()  # raises unless Kafka acknowledged every record: nothing is saved
        if context == AUDIT:
            self.entries_published += len(notes)
        else:
            self.published += len(notes)
        return len(notes), notes[-1].id

    def _position(self, cur: Any, context: str) -> int:
        cur.execute("SELECT position FROM relay_positions WHERE context = %s", (context,))
        row = cur.fetchone()
        self._known[context] = position = int(row[0]) if row else 0
        return position

    @staticmethod
    def _save(cur: Any, context: str, position: int) -> None:
        cur.execute("INSERT INTO relay_positions (context, position) VALUES (%s, %s) "
                    "ON CONFLICT (context) DO UPDATE SET position = excluded.position "
                    "WHERE relay_positions.position < excluded.position", (context, position))

    def close(self, timeout: float = 5.0) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.close(timeout=timeout)

    # -- observation ------------------------------------------------------------------------
    def positions(self) -> dict[str, int]:
        with self.db.transaction() as cur:
            return {c: self._position(cur, c) for c in self.stores.by_context()}

    def lag(self) -> dict[str, int]:
        """Events committed but not yet published, per context."""
        done = self.positions()
        return {c: max(top - done.get(c, 0), 0) for c, top in self.stores.max_positions().items()}

    def health(self) -> str | None:
        """None when healthy; else why not."""
        if self._thread is not None and not self._thread.is_alive():
            return "the Kafka relay thread is not running"
        if self.last_error and time.monotonic() - self.last_progress > STUCK_AFTER_S:
            waiting = [c for c, n in self.lag().items() if n]
            if waiting:
                return (f"the Kafka relay published nothing for {STUCK_AFTER_S:.0f} s while "
                        f"events wait ({', '.join(waiting)}): {self.last_error}")
        return None

    # -- running ----------------------------------------------------------------------------
    def run_forever(self, stop: threading.Event) -> None:
        """Poll every POLL_INTERVAL_S until ``stop`` is set; errors back off and retry."""
        backoff = 0.5
        while not stop.is_set():
            try:
                self.run_until_idle()
            except Exception as error:
                self.errors += 1
                self.last_error = f"{type(error).__name__}: {error}"
                log.warning("kafka relay batch failed (%s); retrying in %.1f s",
                            self.last_error, backoff)
                # The producer may still hold records queued behind the failed one: drop
                # them (close at once) so a later retry cannot land out of order.
                self.close(timeout=0)
                stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff, self.last_error = 0.5, None
            stop.wait(POLL_INTERVAL_S)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, args=(self._stop,),
                                        name="kafka-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        self.close()


def relay_for(owner: Any, bootstrap_servers: str, prefix: str | None = None) -> KafkaRelay:
    """A relay over the event stores and read-model database of ``owner`` (a Gateway or
    ``RelayStores``)."""
    from adapters.kafka_publisher import KafkaPublisher

    prefix = prefix or os.environ.get("GATEWAYZ_KAFKA_TOPIC_PREFIX") or DEFAULT_PREFIX
    return KafkaRelay(owner.stores, owner.db, lambda: KafkaPublisher(bootstrap_servers),
                      prefix=prefix)


# The relay reads one batch of one context at a time: a connection per context is plenty,
# where a serving Gateway keeps 4-12 per context (PostgreSQL allows only so many clients).
SMALL_POOLS = {"POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "1"}


class RelayStores:
    """What a relay process opens: the event stores and the read-model database (for its
    positions). Not a Gateway: no services, no hold store, and no pepper or master key,
    since publication never decrypts anything (11.11)."""

    def __init__(self, settings: Any) -> None:
        from adapters.persistence.database import open_database
        from adapters.persistence.migrate import migrate
        from adapters.persistence.store_config import StoreConfig
        from application.event_stores import EventStores

        if settings.database_url:
            config = StoreConfig.from_url(settings.database_url, settings.schema)
        else:  # the embedded store of `gatewayz serve` in the same data directory
            settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            config = StoreConfig.sqlite(str(settings.data_dir / "gatewayz.sqlite"))
        self.db = open_database(config)
        try:
            migrate(self.db)  # relay_positions may be newer than the serving workers
            self.stores = EventStores(lambda context: config.app_env(context) | SMALL_POOLS)
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        self.stores.close()
        self.db.close()


def run_process(settings: Any) -> int:
    """``gatewayz relay``: relay in this process until SIGTERM or SIGINT."""
    import signal
    import sys

    servers = settings.kafka_bootstrap_servers
    if not servers:
        print("gatewayz relay needs KAFKA_BOOTSTRAP_SERVERS (host:port[,host:port...])",
              file=sys.stderr)
        return 2
    try:
        opened = RelayStores(settings)
    except Exception as error:  # e.g. DATABASE_URL unreachable: say so, exit non-zero
        print(f"cannot start: {error}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    relay = relay_for(opened, servers)
    print(f"kafka relay publishing to {servers} (topics {relay.prefix}.*); Ctrl-C to stop",
          flush=True)
    try:
        relay.run_forever(stop)
    finally:
        relay.close()
        opened.close()
    return 0
