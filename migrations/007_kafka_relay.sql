-- The Kafka relay's own committed position per bounded context (spec 11.11): every event of
-- the context up to this notification id is acknowledged by Kafka. Kept apart from
-- projection_tracking so a read-model rebuild never re-publishes and a Kafka outage never
-- holds back projections.
CREATE TABLE IF NOT EXISTS relay_positions (
    context TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
