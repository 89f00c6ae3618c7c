DROP TABLE metered_events;
DROP TABLE usage_latency;
DROP TABLE usage_rollups;
DROP TABLE usage_records;
