-- Operational tables that are not projections: not rebuilt from events, not compared by
-- `gatewayz replay --verify`.
CREATE TABLE IF NOT EXISTS idempotency_records (
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    status INTEGER,
    content_type TEXT,
    body TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (scope, idem_key)
);
CREATE TABLE IF NOT EXISTS provider_secrets (
    slug TEXT PRIMARY KEY,
    ciphertext TEXT NOT NULL
);
