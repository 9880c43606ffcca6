-- When each model was first listed (9.5 `created`, projections/catalog.py): one row per
-- Model.Listed, stamped with the event's time, so a rebuild writes the same rows.
CREATE TABLE IF NOT EXISTS catalog_models (
    model_id TEXT PRIMARY KEY,
    listed_at TEXT NOT NULL
);
-- Models listed before this migration have no row, and their Listed events live in the
-- event store, which SQL here cannot read: the catalog projection is replayed from position
-- 0 (Gateway.start projects to idle before serving). Its rows are not emptied first:
-- re-applying its events over them ends at the same rows (registrations and listings insert
-- only when absent, enable/disable and prices are last-writer-wins), and routing keeps
-- every model meanwhile. Stop older workers first: they would not fill this table.
DELETE FROM projection_tracking WHERE projection = 'catalog';
