DROP TABLE metered_events;
DROP TABLE usage_latency_bins;
DROP TABLE usage_rollups;
DROP TABLE usage_records;
