-- Which worker instance placed each hold (HoldPlaced v2), so a dead worker's holds can be
-- voided within seconds; and events a projection could not apply, so one bad event never
-- wedges projection for everyone (it is recorded here, counted, and shown by replay --verify).
ALTER TABLE holds ADD COLUMN worker_id TEXT NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS projection_failures (
    context TEXT NOT NULL,
    position BIGINT NOT NULL,
    projection TEXT NOT NULL,
    event_type TEXT NOT NULL,
    error TEXT NOT NULL,
    PRIMARY KEY (context, position, projection)
);
-- Sweeps look at open holds only; this stays small however many requests were ever made.
CREATE INDEX IF NOT EXISTS holds_open_placed ON holds (placed_at) WHERE ended_at IS NULL;
-- Heartbeats of gateway workers when PostgreSQL is shared without Redis.
CREATE TABLE IF NOT EXISTS worker_heartbeats (
    worker_id TEXT PRIMARY KEY,
    seen_epoch BIGINT NOT NULL
);
