-- Stored Responses (9.4): what GET /v1/responses/{id} returns and previous_response_id
-- continues from. Operational state, not a read model: content is encrypted with the
-- account's data key (so erasure shreds it) and rows expire after 30 days.
CREATE TABLE IF NOT EXISTS stored_responses (
    response_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS stored_responses_expiry ON stored_responses (expires_at);
