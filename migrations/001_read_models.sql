-- Read models built by projections (projections/). Every table here can be dropped and
-- rebuilt from events; `gatewayz replay --verify` compares a rebuild with the live rows.
CREATE TABLE IF NOT EXISTS projection_tracking (
    projection TEXT NOT NULL,
    context TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (projection, context)
);
CREATE TABLE IF NOT EXISTS stream_index (
    stream TEXT PRIMARY KEY,
    ref TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY,
    plan TEXT NOT NULL,
    origin TEXT NOT NULL,
    suspended INTEGER NOT NULL DEFAULT 0,
    opened_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS balances (
    account_id TEXT PRIMARY KEY,
    trial BIGINT NOT NULL DEFAULT 0,
    allowance BIGINT NOT NULL DEFAULT 0,
    purchased BIGINT NOT NULL DEFAULT 0,
    reserved_trial BIGINT NOT NULL DEFAULT 0,
    reserved_allowance BIGINT NOT NULL DEFAULT 0,
    reserved_purchased BIGINT NOT NULL DEFAULT 0,
    lifetime_credits BIGINT NOT NULL DEFAULT 0,
    lifetime_debits BIGINT NOT NULL DEFAULT 0,
    trial_ends_at TEXT,
    allowance_active INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS holds (
    request_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    hold_micros BIGINT NOT NULL,
    reserved_trial BIGINT NOT NULL,
    reserved_allowance BIGINT NOT NULL,
    reserved_purchased BIGINT NOT NULL,
    placed_at TEXT NOT NULL,
    ended_at TEXT,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS holds_open ON holds (account_id, ended_at);
CREATE TABLE IF NOT EXISTS ledger_lines (
    line_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    pool TEXT NOT NULL,
    amount_micros BIGINT NOT NULL,
    reference TEXT NOT NULL,
    description TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_lines_account ON ledger_lines (account_id, at, line_id);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    requested_model TEXT NOT NULL,
    stream INTEGER NOT NULL,
    status TEXT NOT NULL,
    hold_micros BIGINT NOT NULL,
    provider TEXT,
    served_model TEXT,
    prompt_tokens BIGINT,
    completion_tokens BIGINT,
    token_source TEXT,
    cost_micros BIGINT,
    charged_micros BIGINT,
    uncollected_micros BIGINT,
    finish_reason TEXT,
    ttfb_ms BIGINT,
    duration_ms BIGINT,
    client_disconnected INTEGER,
    void_reason TEXT,
    attempts TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    ended_at TEXT
);
CREATE INDEX IF NOT EXISTS requests_account ON requests (account_id, created_at);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    environment TEXT NOT NULL,
    prefix TEXT NOT NULL,
    last4 TEXT NOT NULL,
    status TEXT NOT NULL,
    scopes TEXT NOT NULL,
    expires_at TEXT,
    max_requests BIGINT,
    allowed_models TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    rotated_at TEXT,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS api_keys_account ON api_keys (account_id, name_lower);
CREATE TABLE IF NOT EXISTS key_secrets (
    secret_hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    valid_until TEXT
);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    account_id TEXT,
    role TEXT NOT NULL,
    permissions TEXT NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS staff_tokens (
    secret_hash TEXT PRIMARY KEY,
    token_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    prefix TEXT NOT NULL,
    last4 TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS providers (
    slug TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    protocol TEXT NOT NULL,
    base_url TEXT NOT NULL,
    allow_private INTEGER NOT NULL,
    enabled INTEGER NOT NULL,
    priority BIGINT NOT NULL,
    timeout_ms BIGINT NOT NULL,
    credential_last4 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_prices (
    model_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    prices TEXT NOT NULL,
    native_model_id TEXT NOT NULL,
    max_output_tokens BIGINT,
    effective_at TEXT NOT NULL,
    PRIMARY KEY (model_id, provider)
);
