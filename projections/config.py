"""Gateway settings read model: the current value of each ``config:{name}`` stream (1.9).

Applied by the access projection (Config streams are saved in the access context, see
application/accounts.py), which then sets ``effects.config_changed`` so the limiter reloads.
"""

from __future__ import annotations

import json
from typing import Any

from domain.config import IP_BYPASS
from projections.base import at, dumps, event_type, index_stream

CONFIG_EVENTS = frozenset({"Config.Opened", "Config.Changed"})


def apply_config(cur: Any, event: Any) -> None:
    kind = event_type(event)
    if kind == "Config.Opened":
        # So the audit trail names the target config:ip_bypass, not a bare stream UUID.
        index_stream(cur, event, event.name)
    elif kind == "Config.Changed":
        cur.execute("INSERT INTO gateway_config (name, value, changed_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
                    "changed_at = excluded.changed_at",
                    (event.name, dumps(event.new), at(event)))


class ConfigQueries:
    def __init__(self, db: Any) -> None:
        self.db = db

    def value(self, name: str, default: Any = None) -> Any:
        with self.db.transaction() as cur:
            cur.execute("SELECT value FROM gateway_config WHERE name = %s", (name,))
            row = cur.fetchone()
        return default if row is None else json.loads(row[0])

    def ip_bypass(self) -> list[str]:
        """The networks layer 1 never limits, as an admin last set them (none before)."""
        return list(self.value(IP_BYPASS, []))
