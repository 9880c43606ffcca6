"""Background duties of a serving worker: heartbeat, hold sweeps and reconciliation.

Every SWEEP_INTERVAL_S: expire holds past the TTL, void the holds of dead workers, and make
the hold store agree with the event store. Each step is independent: one failing (Redis
away, database restarting) is logged and the next pass tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from adapters.workers import HEARTBEAT_TTL_S
from application.sweeper import SWEEP_INTERVAL_S, sweep_expired_holds, void_holds_of_dead_workers

log = logging.getLogger("gatewayz.maintenance")


def sweep_once(gw: Any) -> dict[str, int]:
    """One pass, blocking (run it off the event loop). Returns what each step did."""
    done = {"expired": 0, "voided": 0, "reconciled": 0}
    steps = (
        ("expired", lambda: sweep_expired_holds(gw.stores.requests, gw.balances.expired_holds,
                                                gw.clock)),
        ("voided", lambda: void_holds_of_dead_workers(
            gw.stores.requests, gw.hold_queries.open_holds_by_worker, gw.workers)),
        ("reconciled", lambda: gw.reconciler.reconcile_all().changes),
    )
    for name, step in steps:
        try:
            done[name] = step()
        except Exception:
            log.exception("hold maintenance step %s failed; retrying next pass", name)
    if done["expired"] or done["voided"]:
        # Their terminal events release holds once projected; do it now, not next poll.
        gw.projector.wake()
    return done


class Maintenance:
    def __init__(self, gw: Any) -> None:
        self.gw = gw
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._heartbeat()),
                       asyncio.create_task(self._sweep())]

    async def _heartbeat(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.gw.workers.beat)
            except Exception:
                log.warning("worker heartbeat failed; retrying")
            await asyncio.sleep(HEARTBEAT_TTL_S / 4)

    async def _sweep(self) -> None:
        while True:
            await asyncio.to_thread(sweep_once, self.gw)
            await asyncio.sleep(SWEEP_INTERVAL_S)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
