-- Discovery sync (spec 5.2), projected by projections/catalog_sync.py from ProviderListing
-- events: the synced layer of the catalog, between the shipped seed and admin rows.
-- One row per (provider, canonical model) of the provider's last good listing. fields is the
-- JSON of the listed metadata (name, limits, modalities, capabilities); prices is the JSON of
-- USD-per-million decimal strings, NULL when the listing gives none (the seed's then apply).
-- listed_at is the time of the run that first listed it; run_id the run that last wrote it.
CREATE TABLE IF NOT EXISTS synced_models (
    provider TEXT NOT NULL,
    model_id TEXT NOT NULL,
    native_id TEXT NOT NULL,
    fields TEXT NOT NULL,
    prices TEXT,
    run_id TEXT NOT NULL,
    listed_at TEXT NOT NULL,
    PRIMARY KEY (provider, model_id)
);
-- Each provider's last sync outcomes (times in the event time format, which sorts as text):
-- staleness is "no success for two intervals" (5.2 X-Gatewayz-Catalog-Stale). synced_events
-- counts the provider's Synced events: readers keep parsed rows until some count moves.
CREATE TABLE IF NOT EXISTS catalog_sync_status (
    provider TEXT PRIMARY KEY,
    last_success_at TEXT,
    last_failure_at TEXT,
    last_error TEXT,
    last_run_id TEXT,
    synced_events BIGINT NOT NULL DEFAULT 0
);
