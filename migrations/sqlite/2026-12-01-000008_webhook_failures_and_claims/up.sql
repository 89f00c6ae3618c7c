-- Failed attempts in a row per endpoint (reset by a success or by enabling the endpoint again):
-- GANTRY_WEBHOOK_DISABLE_AFTER_FAILURES disables an endpoint after that many.
ALTER TABLE webhook_endpoints ADD COLUMN consecutive_failures BIGINT NOT NULL DEFAULT 0;

-- Deliveries by event are found through webhook_deliveries_once (event_id, endpoint_id); a second
-- index on event_id alone only cost every insert and update.
DROP INDEX webhook_deliveries_event;
