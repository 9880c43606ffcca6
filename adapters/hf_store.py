"""Hugging Face enrichment rows (spec 5.6) in the read-model database: the operational
table of migrations/021_hf_enrichment.sql, written directly, never through events.

A run's results are saved in one transaction. A success replaces the row; a failure only
stamps ``failed_at``, so the last good values stay (5.6 "keep the last values"), unless
the model now names another repository, whose old stats would be wrong. Statements are
portable (``%s`` placeholders, ``ON CONFLICT`` upserts whose SET reads the old row on
SQLite and PostgreSQL alike).
"""

from __future__ import annotations

import json
from typing import Any

from application.hf_enrichment import HfRow, parse


class SqlHfStore:
    def __init__(self, db: Any) -> None:
        self.db = db

    def rows(self) -> list[HfRow]:
        """Every row (one per model that ever had an hf id, until purged): a few thousand
        small rows, read by the job every few minutes, never per request."""
        with self.db.transaction() as cur:
            cur.execute("SELECT model_id, hf_id, data, fetched_at, failed_at "
                        "FROM hf_enrichment ORDER BY model_id")
            found = cur.fetchall()
        return [HfRow(m, h, parse(d), f, x) for m, h, d, f, x in found]

    def save(self, results: list[tuple[str, str, dict[str, Any] | None]], at: str) -> None:
        """(model id, hf id, object or None for a failed fetch) of one run, at ``at``."""
        if not results:
            return
        with self.db.transaction() as cur:
            for model_id, hf_id, data in results:
                if data is not None:
                    cur.execute(
                        "INSERT INTO hf_enrichment (model_id, hf_id, data, fetched_at, "
                        "failed_at) VALUES (%s, %s, %s, %s, NULL) ON CONFLICT (model_id) "
                        "DO UPDATE SET hf_id = excluded.hf_id, data = excluded.data, "
                        "fetched_at = excluded.fetched_at, failed_at = NULL",
                        (model_id, hf_id, json.dumps(data, sort_keys=True), at))
                else:
                    # The old values stay only while they describe the same repository.
                    cur.execute(
                        "INSERT INTO hf_enrichment (model_id, hf_id, data, fetched_at, "
                        "failed_at) VALUES (%s, %s, NULL, NULL, %s) ON CONFLICT (model_id) "
                        "DO UPDATE SET failed_at = excluded.failed_at, "
                        "data = CASE WHEN hf_enrichment.hf_id = excluded.hf_id "
                        "THEN hf_enrichment.data ELSE NULL END, "
                        "fetched_at = CASE WHEN hf_enrichment.hf_id = excluded.hf_id "
                        "THEN hf_enrichment.fetched_at ELSE NULL END, "
                        "hf_id = excluded.hf_id",
                        (model_id, hf_id, at))

    def purge(self, before: str) -> int:
        """Drop rows with no attempt since ``before``: the job attempts every listed
        model at least daily, so these are models gone from the catalog."""
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM hf_enrichment WHERE "
                        "(fetched_at IS NULL OR fetched_at < %s) "
                        "AND (failed_at IS NULL OR failed_at < %s)", (before, before))
            return max(cur.rowcount, 0)
