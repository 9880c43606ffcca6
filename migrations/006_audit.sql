-- The hash-chained audit trail (11.6), its checkpoints (11.7) and their public keys.
CREATE TABLE IF NOT EXISTS audit_entries (
    seq BIGINT PRIMARY KEY,
    context TEXT NOT NULL,
    position BIGINT NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    command_id TEXT,
    request_id TEXT,
    prev_hash TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (context, position)
);
CREATE INDEX IF NOT EXISTS audit_entries_actor ON audit_entries (actor_id, seq);
CREATE INDEX IF NOT EXISTS audit_entries_target ON audit_entries (target_id, seq);
CREATE INDEX IF NOT EXISTS audit_entries_type ON audit_entries (event_type, seq);
CREATE INDEX IF NOT EXISTS audit_entries_request ON audit_entries (request_id);
CREATE INDEX IF NOT EXISTS audit_entries_time ON audit_entries (recorded_at);
-- A checkpoint is noted (seq, head) in the chain's own transaction and signed afterwards by
-- a process holding the signing key; body and signature are then set once.
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    seq BIGINT PRIMARY KEY,
    head_hash TEXT NOT NULL,
    previous_seq BIGINT NOT NULL,
    created_at TEXT,
    key_id TEXT,
    body TEXT,
    signature TEXT
);
CREATE TABLE IF NOT EXISTS audit_signing_keys (
    key_id TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    public_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_until TEXT
)
