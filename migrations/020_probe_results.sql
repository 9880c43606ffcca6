-- Active health probes (spec 3.1, 8.7): operational tables, not read models. Probes are
-- many and cheap and not facts of any account, so they are not events: a probe writes
-- here only (adapters/probe_store.py), and a rebuild of the read models leaves these alone.
-- Times are epoch milliseconds (at_ms) and UTC day numbers (day = at_ms / 86,400,000), so
-- windows and retention are integer comparisons on both SQLite and PostgreSQL.
-- One row per recorded probe (after its retries); kept 30 days.
CREATE TABLE IF NOT EXISTS probe_results (
    provider TEXT NOT NULL,
    model_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    ok INTEGER NOT NULL,
    status INTEGER,
    latency_ms INTEGER NOT NULL,
    error_class TEXT,
    attempts INTEGER NOT NULL
);
-- Uptime over 24 h, 7 d and 30 d of one model reads its rows by time.
CREATE INDEX IF NOT EXISTS probe_results_by_model ON probe_results (model_id, at_ms);
-- The retention purge deletes by time alone.
CREATE INDEX IF NOT EXISTS probe_results_by_time ON probe_results (at_ms);
-- Per pair and UTC day, for the 90-day daily history of the status page (8.7), which
-- outlives the 30 days of raw rows; kept 90 days.
CREATE TABLE IF NOT EXISTS probe_daily (
    provider TEXT NOT NULL,
    model_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    probes BIGINT NOT NULL,
    ok BIGINT NOT NULL,
    PRIMARY KEY (model_id, provider, day)
);
-- Each pair's latest result: what the scheduler reads every tick, one row a pair.
CREATE TABLE IF NOT EXISTS probe_last (
    provider TEXT NOT NULL,
    model_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    ok INTEGER NOT NULL,
    PRIMARY KEY (provider, model_id)
);
-- Which worker runs the scheduled probes: one at a time, so N workers do not probe every
-- pair N times (an admin's probe runs on whichever worker got the request).
CREATE TABLE IF NOT EXISTS probe_lease (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
