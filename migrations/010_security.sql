-- The `security` read model (11.3, 11.5): security events by time, account and kind, for
-- auditors and admins. One row per Security event; counted events (failed authentications,
-- misused keys) carry their count. Client IPs stay in the events, encrypted: never here.
CREATE TABLE IF NOT EXISTS security_events (
    event_id TEXT PRIMARY KEY,
    position BIGINT,
    security_id TEXT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT,
    account_id TEXT,
    principal_kind TEXT,
    principal_id TEXT,
    credential_kind TEXT,
    key_prefix TEXT,
    route TEXT,
    permission TEXT,
    source TEXT,
    count BIGINT NOT NULL,
    window_start TEXT
);
-- Newest first, optionally narrowed to one account or kind; (at, event_id) is the cursor.
CREATE INDEX IF NOT EXISTS security_events_at ON security_events (at, event_id);
CREATE INDEX IF NOT EXISTS security_events_account ON security_events (account_id, at, event_id);
CREATE INDEX IF NOT EXISTS security_events_kind ON security_events (kind, at, event_id);
