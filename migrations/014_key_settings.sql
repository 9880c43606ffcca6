-- Key settings (spec 1.1, 1.3, 1.6, 1.7; ApiKey.SettingsChanged and ApiKey.Expired, projected
-- by projections/access.py). JSON as TEXT, like scopes and allowed_models; the defaults are
-- what a key issued before this migration (or replayed from an Issued event, which has no
-- such fields) holds: no restriction.
ALTER TABLE api_keys ADD COLUMN ip_allowlist TEXT NOT NULL DEFAULT '[]';
ALTER TABLE api_keys ADD COLUMN referrer_allowlist TEXT NOT NULL DEFAULT '[]';
ALTER TABLE api_keys ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
ALTER TABLE api_keys ADD COLUMN rate_limits TEXT NOT NULL DEFAULT '{}';
ALTER TABLE api_keys ADD COLUMN expired_at TEXT;
-- The expiry sweep looks at active keys with an expiry only.
CREATE INDEX IF NOT EXISTS api_keys_expiring ON api_keys (expires_at) WHERE status = 'active';
-- A key's request count (max_requests quota, 1.2 check 8) is counted from the usage read
-- model; without this index every check would scan every request ever made.
CREATE INDEX IF NOT EXISTS requests_key ON requests (key_id);
-- When a key was last used (1.2: written at most once per 60 s per key). Operational, not a
-- read model: no event records a use, so replay neither rebuilds nor compares it, and it
-- stays out of api_keys (whose rows replay --verify compares with a rebuild).
CREATE TABLE IF NOT EXISTS key_last_used (
    key_id TEXT PRIMARY KEY,
    last_used_at TEXT NOT NULL
);
