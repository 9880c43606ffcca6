-- The journal read model (11.5, projections/journal.py): double-entry postings of every
-- money event, debit positive and credit negative, so the postings of one event (and of
-- every position) sum to zero. `line` numbers an event's postings, making re-applying a
-- position a no-op (ON CONFLICT DO NOTHING); (context, position) also serves as-of filters.
CREATE TABLE IF NOT EXISTS journal_postings (
    context TEXT NOT NULL,
    position BIGINT NOT NULL,
    line INTEGER NOT NULL,
    entry_id TEXT NOT NULL,
    ledger_account TEXT NOT NULL,
    account_id TEXT,
    kind TEXT NOT NULL,
    amount_micros BIGINT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (context, position, line)
);
-- No secondary index: the reports (trial balance, liabilities) read every posting up to a
-- point anyway, and each index would slow the projector on the busiest event (settlement).
-- Which customer account each request stream belongs to: a settlement names only its stream,
-- and the journal must not read another projection's tables (it is rebuilt on its own).
CREATE TABLE IF NOT EXISTS journal_requests (
    stream TEXT PRIMARY KEY,
    account_id TEXT NOT NULL
);
