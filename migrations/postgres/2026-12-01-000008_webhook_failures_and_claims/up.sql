-- Failed attempts in a row per endpoint (reset by a success or by enabling the endpoint again):
-- GANTRY_WEBHOOK_DISABLE_AFTER_FAILURES disables an endpoint after that many.
ALTER TABLE webhook_endpoints ADD COLUMN consecutive_failures BIGINT NOT NULL DEFAULT 0;

-- Deliveries by event are found through webhook_deliveries_once (event_id, endpoint_id); a second
-- index on event_id alone only cost every insert and update.
DROP INDEX webhook_deliveries_event;

-- Claiming a delivery sets only its (unindexed) lease: free space on each page lets PostgreSQL
-- make that a HOT update, with no new index entries and no dead ones for the next claim to skip.
-- Both queues (deliveries, the outbox) turn over fast: vacuum and analyze them after 2 % of their
-- rows changed, not the default 20 % / 10 %.
ALTER TABLE webhook_deliveries SET (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE events SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
