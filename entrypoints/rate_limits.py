"""How a gateway process builds and feeds its rate limiter (1.9-1.12): Redis or in process,
the bypass list from configuration and events, tokens counted at settlement."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from application.rate_limiting import RateLimiter
from projections.config import ConfigQueries

log = logging.getLogger("gatewayz")


class RateLimits:
    def __init__(self, redis_url: str | None, redis_prefix: str, db: Any) -> None:
        # Redis shared by all workers when configured (1.10), else in process; the
        # in-process fallback divides each limit by GATEWAYZ_WORKERS (1.12).
        workers = int(os.environ.get("GATEWAYZ_WORKERS", "1"))
        self.limiter = (RateLimiter.with_redis(redis_url, redis_prefix, workers) if redis_url
                        else RateLimiter.embedded())
        self.db = db
        self._tasks: set[asyncio.Task] = set()

    def load_bypass(self) -> None:
        """The layer-1 bypass list (1.9): GATEWAYZ_IP_BYPASS plus the admin's list."""
        configured = [p for p in os.environ.get("GATEWAYZ_IP_BYPASS", "").split(",")
                      if p.strip()]
        try:
            self.limiter.set_bypass([*configured, *ConfigQueries(self.db).ip_bypass()])
        except Exception:
            log.warning("could not load the IP bypass list; keeping the previous one")

    def count_tokens(self, principal: Any, tokens: int) -> None:
        """A settled request's tokens go to its key's token windows, off the hot path."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # settled outside the server's loop: nothing to count with
            return
        task = loop.create_task(self.limiter.add_tokens(principal.key.key_id, None, tokens))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
