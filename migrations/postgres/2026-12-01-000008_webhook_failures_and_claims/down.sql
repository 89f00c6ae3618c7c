ALTER TABLE webhook_deliveries RESET (fillfactor);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
ALTER TABLE webhook_endpoints DROP COLUMN consecutive_failures;
