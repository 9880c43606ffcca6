-- Staff users and tokens (1.4, 1.5): a deactivated user and a revoked token must stop
-- authenticating, so the access read model keeps both facts (from the events' times, so a
-- rebuild writes the same rows). E-mails stay in the events, encrypted: never here.
ALTER TABLE users ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN deactivated_at TEXT;
ALTER TABLE staff_tokens ADD COLUMN revoked_at TEXT;
-- Revocation finds a token by its public id; a user's page lists their tokens.
CREATE INDEX IF NOT EXISTS staff_tokens_token_id ON staff_tokens (token_id);
CREATE INDEX IF NOT EXISTS staff_tokens_user ON staff_tokens (user_id);
-- Rows written before this file are right as they are: no event before it could
-- deactivate a user or revoke a token, so every existing row is active and unrevoked.
