"""Probe results in the read-model database (3.1, 8.7): operational tables of
migrations/020_probe_results.sql, written directly, never through events.

One recorded probe is one transaction: its raw row (30 days), its UTC day's counters (90
days, the status page's daily history) and the pair's latest result (what the scheduler
reads every tick). All statements are portable: ``%s`` placeholders, ``ON CONFLICT``
upserts, integer times; SQLite and PostgreSQL run them alike.
"""

from __future__ import annotations

from datetime import UTC, datetime

from application.feed import recorded_at
from domain.probe_schedule import LastResult, Pair, ProbeResult

DAY_MS = 86_400_000
RAW_RETENTION_DAYS = 30  # 3.1 / 8.7: uptime over 24 h, 7 d and 30 d
DAILY_RETENTION_DAYS = 90  # 8.7: daily history for 90 days
LEASE = "scheduled"


def day_of(at_ms: int) -> int:
    return at_ms // DAY_MS


class SqlProbeStore:
    def __init__(self, db) -> None:
        self.db = db

    def record(self, result: ProbeResult) -> None:
        at_ms = int(result.at * 1000)
        ok = int(result.ok)
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO probe_results (provider, model_id, at_ms, ok, status, "
                        "latency_ms, error_class, attempts) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        (result.provider, result.model_id, at_ms, ok, result.status,
                         round(result.latency_ms), result.error_class, result.attempts))
            cur.execute("INSERT INTO probe_daily (provider, model_id, day, probes, ok) "
                        "VALUES (%s, %s, %s, 1, %s) ON CONFLICT (model_id, provider, day) "
                        "DO UPDATE SET probes = probe_daily.probes + 1, "
                        "ok = probe_daily.ok + excluded.ok",
                        (result.provider, result.model_id, day_of(at_ms), ok))
            # A slower worker's older result never replaces a newer one.
            cur.execute("INSERT INTO probe_last (provider, model_id, at_ms, ok) "
                        "VALUES (%s, %s, %s, %s) ON CONFLICT (provider, model_id) "
                        "DO UPDATE SET at_ms = excluded.at_ms, ok = excluded.ok "
                        "WHERE probe_last.at_ms <= excluded.at_ms",
                        (result.provider, result.model_id, at_ms, ok))

    def last_results(self) -> dict[Pair, LastResult]:
        with self.db.transaction() as cur:
            cur.execute("SELECT provider, model_id, at_ms, ok FROM probe_last")
            rows = cur.fetchall()
        return {(p, m): LastResult(at_ms / 1000, bool(ok)) for p, m, at_ms, ok in rows}

    def window(self, model_id: str, since: float) -> dict[str, tuple[int, int]]:
        """provider -> (probes, ok probes) of a model since ``since`` (epoch seconds)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT provider, COUNT(*), SUM(ok) FROM probe_results "
                        "WHERE model_id = %s AND at_ms >= %s GROUP BY provider",
                        (model_id, int(since * 1000)))
            rows = cur.fetchall()
        return {p: (int(n), int(ok or 0)) for p, n, ok in rows}

    def daily(self, model_id: str, since: float) -> dict[str, dict[int, tuple[int, int]]]:
        """provider -> UTC day number -> (probes, ok probes), from the day of ``since``."""
        with self.db.transaction() as cur:
            cur.execute("SELECT provider, day, probes, ok FROM probe_daily "
                        "WHERE model_id = %s AND day >= %s",
                        (model_id, day_of(int(since * 1000))))
            rows = cur.fetchall()
        out: dict[str, dict[int, tuple[int, int]]] = {}
        for provider, day, probes, ok in rows:
            out.setdefault(provider, {})[int(day)] = (int(probes), int(ok))
        return out

    def purge(self, now: float) -> int:
        """Drop raw rows older than 30 days, daily counters older than 90, and latest
        results of pairs not probed for 30 days (gone from the catalog, or on-demand and
        forgotten). Returns the raw rows deleted."""
        now_ms = int(now * 1000)
        raw_before = now_ms - RAW_RETENTION_DAYS * DAY_MS
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM probe_results WHERE at_ms < %s", (raw_before,))
            deleted = cur.rowcount
            cur.execute("DELETE FROM probe_daily WHERE day < %s",
                        (day_of(now_ms) - DAILY_RETENTION_DAYS,))
            cur.execute("DELETE FROM probe_last WHERE at_ms < %s", (raw_before,))
        return max(deleted, 0)

    def requests_by_pair(self, since: float) -> dict[Pair, int]:
        """Requests served per (provider, model) since ``since``, from the usage read model
        (projections/usage.py), for the tiers. A scan of the window's rows: run every few
        minutes by the scheduler, never per request."""
        stamp = recorded_at(datetime.fromtimestamp(since, UTC))
        with self.db.transaction() as cur:
            cur.execute("SELECT provider, served_model, COUNT(*) FROM requests "
                        "WHERE created_at >= %s AND provider IS NOT NULL "
                        "AND served_model IS NOT NULL GROUP BY provider, served_model",
                        (stamp,))
            rows = cur.fetchall()
        return {(p, m): int(n) for p, m, n in rows}

    def lead(self, holder: str, now: float, ttl_s: float) -> bool:
        """Take or extend the scheduler's lease; True while ``holder`` has it. Taken only
        when free or expired, in one conditional upsert, so two workers never both win."""
        now_ms = int(now * 1000)
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO probe_lease (name, holder, until_ms) VALUES (%s, %s, %s) "
                        "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                        "until_ms = excluded.until_ms "
                        "WHERE probe_lease.holder = excluded.holder "
                        "OR probe_lease.until_ms < %s",
                        (LEASE, holder, now_ms + int(ttl_s * 1000), now_ms))
            return cur.rowcount == 1
