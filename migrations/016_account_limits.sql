-- Account limits (1.10) and gateway settings (1.9), projected from Account.RestrictedProfileSet,
-- Account.SettingsChanged (projections/accounts.py) and Config.Changed (projections/access.py).
-- The defaults are what an account opened before this file holds: no restriction and no
-- explicit limits (JSON as TEXT, like api_keys.rate_limits).
ALTER TABLE accounts ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN rate_limits TEXT NOT NULL DEFAULT '{}';
-- One row per setting that has been changed at least once; value is its JSON, changed_at the
-- time of its last Config.Changed (from the event, so a rebuild writes the same row).
CREATE TABLE IF NOT EXISTS gateway_config (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    changed_at TEXT NOT NULL
);
