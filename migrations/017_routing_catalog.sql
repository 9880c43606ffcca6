-- Routing and catalog (spec 2, 5), projected by projections/catalog.py from Provider.Configured,
-- Model.Described, Model.RoutingSet, Model.ScoresSet and Alias.* events. A provider registered
-- before this file gets the defaults of a registration without these fields.
ALTER TABLE providers ADD COLUMN weight BIGINT NOT NULL DEFAULT 50;
ALTER TABLE providers ADD COLUMN regions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE providers ADD COLUMN passthrough INTEGER NOT NULL DEFAULT 0;
-- Metadata an admin set by hand per model (JSON of the fields given), and scores.
CREATE TABLE IF NOT EXISTS model_metadata (
    model_id TEXT PRIMARY KEY,
    fields TEXT NOT NULL DEFAULT '{}',
    scores TEXT NOT NULL DEFAULT '{}',
    routing TEXT,
    maintenance INTEGER NOT NULL DEFAULT 0
);
-- The admin alias table over the shipped one: target NULL means "removed by an admin".
CREATE TABLE IF NOT EXISTS model_aliases (
    alias TEXT PRIMARY KEY,
    target TEXT
);
-- Requests per model over 7 days (sort=popularity, 5.5) reads a time range of requests.
CREATE INDEX IF NOT EXISTS requests_created ON requests (created_at);
-- Account traffic-split routes (2.12), from Route.* events; targets NULL once deleted.
CREATE TABLE IF NOT EXISTS account_routes (
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    targets TEXT,
    PRIMARY KEY (account_id, name)
);
