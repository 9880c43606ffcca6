-- Per-account data keys (10.5, 11.12): personal fields of events are encrypted with their
-- account's data key, kept here wrapped by the master key (adapters/data_keys.py). This is
-- key material, not a read model: it is not rebuilt from events, and `gatewayz replay
-- --verify` neither compares nor wipes it (it compares only 001's tables). Erasure sets
-- wrapped_key to NULL and destroyed_at; a row with destroyed_at and no key is a tombstone that
-- also makes older master-key (v1) values of that account read "[erased]". Staff users who
-- belong to no account have a row under their user id.
CREATE TABLE IF NOT EXISTS account_data_keys (
    account_id TEXT PRIMARY KEY,
    wrapped_key TEXT,
    created_at TEXT NOT NULL,
    destroyed_at TEXT
);
-- The accounts read model shows erasure; set by the Account.Erased projection, so a replay
-- rebuilds it like every other column.
ALTER TABLE accounts ADD COLUMN erased_at TEXT;
