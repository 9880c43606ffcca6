"""Background duties of a serving worker: heartbeat, hold sweeps and reconciliation, audit
checkpoints and the purge of expired stored responses.

Every SWEEP_INTERVAL_S: expire holds past the TTL, void the holds of dead workers, and make
the hold store agree with the event store. Each step is independent: one failing (Redis
away, database restarting) is logged and the next pass tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from adapters.workers import HEARTBEAT_TTL_S
from application import envelope
from application.envelope import Actor, Envelope
from application.sweeper import SWEEP_INTERVAL_S, sweep_expired_holds, void_holds_of_dead_workers
from domain.ids import new_id

log = logging.getLogger("gatewayz.maintenance")


def sweep_once(gw: Any) -> dict[str, int]:
    """One pass, blocking (run it off the event loop). Returns what each step did."""
    done = {"expired": 0, "voided": 0, "reconciled": 0, "checkpointed": 0, "purged": 0,
            "keys_expired": 0}
    with envelope.acting(Envelope(Actor("scheduler", "hold-sweeper"),
                                  correlation_id=new_id("job"))):
        _steps(gw, done)
    if done["expired"] or done["voided"]:
        # Their terminal events release holds once projected; do it now, not next poll.
        gw.projector.wake()
    return done


def _steps(gw: Any, done: dict[str, int]) -> None:
    steps = (
        ("expired", lambda: sweep_expired_holds(gw.stores.requests, gw.balances.expired_holds,
                                                gw.clock)),
        ("voided", lambda: void_holds_of_dead_workers(
            gw.stores.requests, gw.hold_queries.open_holds_by_worker, gw.workers)),
        ("reconciled", lambda: gw.reconciler.reconcile_all().changes),
        ("checkpointed", lambda: gw.audit.tick() or 0),
        ("purged", gw.responses.purge_expired),
        # 1.3: the expiry event within 60 s; authentication refuses at expires_at anyway.
        ("keys_expired", gw.key_settings.expire_due),
    )
    for name, step in steps:
        try:
            done[name] = step()
        except Exception:
            log.exception("hold maintenance step %s failed; retrying next pass", name)


class Maintenance:
    def __init__(self, gw: Any) -> None:
        self.gw = gw
        self._tasks: list[asyncio.Task] = []
        self._stop = threading.Event()
        self._beating: threading.Thread | None = None

    def start(self) -> None:
        # The heartbeat has its own thread: an event loop busy for a while must not make
        # other workers take this live one for dead and void its requests in flight.
        self._beating = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)
        self._beating.start()
        from application import probes
        from application.catalog_sync import run_forever
        from application.credit_watch import run_forever as watch_credit
        from application.hf_enrichment import run_forever as enrich_from_hub

        self._tasks = [asyncio.create_task(self._sweep()),
                       asyncio.create_task(run_forever(self.gw.catalog_sync)),
                       asyncio.create_task(probes.run_forever(self.gw.prober)),
                       asyncio.create_task(watch_credit(self.gw.routing.credit)),
                       asyncio.create_task(enrich_from_hub(self.gw.hf))]

    def _heartbeat(self) -> None:
        while not self._stop.is_set():
            try:
                self.gw.workers.beat()
            except Exception:
                log.warning("worker heartbeat failed; retrying")
            self._stop.wait(HEARTBEAT_TTL_S / 4)

    async def _sweep(self) -> None:
        while True:
            await asyncio.to_thread(sweep_once, self.gw)
            await asyncio.sleep(SWEEP_INTERVAL_S)

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
