-- Idempotency claims (11.2, application/idempotency.py): which worker holds an in-progress
-- claim and since when, so a claim left by a crashed worker is taken over after the hold TTL
-- (or at once when its worker is known dead); and the attempt number, from which the
-- command id is derived (uuid5 of scope + key + attempt). Existing rows are attempt 0; a
-- claim without claimed_at counts from created_at.
ALTER TABLE idempotency_records ADD COLUMN claimed_by TEXT;
ALTER TABLE idempotency_records ADD COLUMN claimed_at TEXT;
ALTER TABLE idempotency_records ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
