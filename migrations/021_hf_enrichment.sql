-- Hugging Face enrichment (spec 5.6): an operational table, not a read model. Hub stats are
-- neither money nor catalog truth and change every day, so they are not events: the daily
-- job (application/hf_enrichment.py) writes here through adapters/hf_store.py, and a
-- rebuild of the read models leaves this table alone.
-- One row per model with a Hugging Face id. ``data`` is the last good answer as JSON (id,
-- downloads, likes, parameters, pipeline_tag, author, license), kept when a later fetch
-- fails so listings keep the last values; NULL while no fetch has succeeded for this
-- ``hf_id``. Times are recorded_at strings (UTC, microseconds), which sort as text.
-- ``failed_at`` is set while the last attempt failed and cleared by the next success.
CREATE TABLE IF NOT EXISTS hf_enrichment (
    model_id TEXT PRIMARY KEY,
    hf_id TEXT NOT NULL,
    data TEXT,
    fetched_at TEXT,
    failed_at TEXT
);
