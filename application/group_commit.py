"""Group-commit writer: one thread saves many request aggregates per transaction.

The recorder serialises writers on the events table (design §2), so saving each request
on its own caps throughput at roughly one transaction per event. Batching whatever is
queued while the previous transaction ran keeps latency low at light load and raises
throughput under heavy load.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
import time
from concurrent.futures import Future, InvalidStateError
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError

from application import envelope

_STOP = object()
log = logging.getLogger("gatewayz.writer")
STUCK_AFTER_S = 10.0


class GroupCommitWriter:
    def __init__(self, app: Application, max_batch: int = 512) -> None:
        self.app = app
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        # Counters rather than a lock: the request path pays one increment, and only
        # wait_idle (tests, shutdown) polls.
        self._submitted = itertools.count(1)
        self._last_submitted = 0
        self._finished = 0
        self.last_progress = time.monotonic()  # when the thread last finished a batch
        self._thread = threading.Thread(target=self._run, name=f"group-commit-{app.name}",
                                        daemon=True)
        self._thread.start()

    def submit(self, *aggregates: Any) -> Future:
        future: Future = Future()
        # Take the pending events now and save those: Application.save drains the aggregates
        # it is given even when the batch fails, so the one-by-one retry below would
        # otherwise record nothing and report success for every aggregate in the batch.
        events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        # The writer's thread does not share the caller's context: stamp the envelope here.
        envelope.stamp(events)
        self._last_submitted = next(self._submitted)  # atomic in CPython
        self._queue.put((events, future))
        return future

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until everything submitted so far is committed (or failed)."""
        target = self._last_submitted
        deadline = time.monotonic() + timeout
        while self._finished < target:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True

    async def save(self, *aggregates: Any) -> int:
        """Durably record the aggregates' pending events; returns the last notification id."""
        return await asyncio.wrap_future(self.submit(*aggregates))

    def health(self) -> str | None:
        """None when healthy; else why not: the thread died, or work waits and nothing has
        finished for STUCK_AFTER_S (a hung database call)."""
        if not self._thread.is_alive():
            return "the group-commit writer thread is not running"
        waiting = self._last_submitted > self._finished
        if waiting and time.monotonic() - self.last_progress > STUCK_AFTER_S:
            return f"the group-commit writer made no progress for {STUCK_AFTER_S:.0f} s"
        return None

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            try:
                self._commit(batch)
            except BaseException as error:  # never let the thread die: fail the batch
                log.exception("group commit failed unexpectedly")
                _fail(batch, error if isinstance(error, Exception) else RuntimeError(error))
            finally:
                self._finished += len(batch)
                self.last_progress = time.monotonic()
            if stop:
                return

    def _commit(self, batch: list) -> None:
        try:
            recordings = self.app.save(*(e for events, _ in batch for e in events))
        except IntegrityError:
            # One conflicting aggregate must not fail its neighbours: retry one by one.
            if len(batch) > 1:
                for item in batch:
                    self._commit([item])
                return
            _fail(batch, IntegrityError("conflict"))
            return
        except Exception as error:  # the store is down: every waiter must hear it
            _fail(batch, error)
            return
        last = recordings[-1].notification.id if recordings else 0
        for _, future in batch:
            # A waiter's event loop may cancel its future at any moment, even between a
            # done() check and set_result: the events are committed either way.
            try:
                future.set_result(last)
            except InvalidStateError:
                pass


def _fail(batch: list, error: BaseException) -> None:
    for _, future in batch:
        try:
            future.set_exception(error)
        except InvalidStateError:
            pass
