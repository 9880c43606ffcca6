-- Keyset pagination of statements (projections/ledger_queries.py): a page walks
-- ledger_lines by (account_id, at, line_id); amount_micros rides along so the running balance
-- before a page is an index-only SUM on SQLite and PostgreSQL. This index has 001's
-- ledger_lines_account (account_id, at, line_id) as its prefix, so that one is dropped.
CREATE INDEX IF NOT EXISTS ledger_lines_cursor ON ledger_lines (account_id, at, line_id, amount_micros);
DROP INDEX IF EXISTS ledger_lines_account;
