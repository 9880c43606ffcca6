-- Incidents (spec 3.4, 8.7), projected by projections/incidents.py from Incident.* events
-- of the catalog context. Times are the events' own (the event time format, which sorts
-- as text), so a rebuild writes the same rows. A new projection starts at position 0, so
-- incidents recorded before this file are projected on the first start after it.
-- model NULL: a provider-wide or provider-level incident. status: open or resolved.
-- resolution: recovered or manual, NULL while open.
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    cause TEXT NOT NULL,
    resolution TEXT,
    opened_at TEXT NOT NULL,
    resolved_at TEXT,
    message TEXT NOT NULL
);
-- The status page reads open incidents and the recent ones, newest first.
CREATE INDEX IF NOT EXISTS incidents_by_status ON incidents (status, opened_at);
CREATE INDEX IF NOT EXISTS incidents_by_opened ON incidents (opened_at);
-- The tracker counts a pair's incidents to find the number of its next one.
CREATE INDEX IF NOT EXISTS incidents_by_pair ON incidents (provider, model);
-- Customer-visible notes; seq is the event's version in the incident's stream.
CREATE TABLE IF NOT EXISTS incident_notes (
    incident_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    text TEXT NOT NULL,
    actor TEXT NOT NULL,
    noted_at TEXT NOT NULL,
    PRIMARY KEY (incident_id, seq)
);
-- Every severity an incident had, the opening one first (3.4 "severity history").
CREATE TABLE IF NOT EXISTS incident_severity_history (
    incident_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    severity TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    PRIMARY KEY (incident_id, seq)
);
