DROP INDEX events_undispatched;
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_secrets;
DROP TABLE webhook_endpoints;
DROP TABLE event_types;
ALTER TABLE plans DROP COLUMN max_webhook_endpoints;
ALTER TABLE events DROP COLUMN is_test;
