-- Raw usage records as segments: one row per organization, UTC day and writer batch, holding that
-- batch's records as a JSON array of
--   [api_key_id, source, operation, status, latency_us, request_bytes, response_bytes,
--    cost_units, quota_units, occurred_at]
-- in the order they were metered. A row per call cost more to write than the rest of the call
-- (three B-tree inserts and the statement's binds); a segment is one insert per batch. Retention
-- deletes whole segments once their last record is past it. Existing raw records move over, one
-- segment each.
CREATE TABLE usage_segments (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    record_count INTEGER NOT NULL,
    records TEXT NOT NULL
);
CREATE INDEX usage_segments_org_time ON usage_segments (org_id, first_at);
CREATE INDEX usage_segments_last ON usage_segments (last_at);

INSERT INTO usage_segments (id, org_id, first_at, last_at, record_count, records)
SELECT id, org_id, occurred_at, occurred_at, 1,
       json_array(json_array(api_key_id, source, operation, status, latency_us, request_bytes,
                             response_bytes, cost_units, quota_units, occurred_at))
FROM usage_records;

DROP TABLE usage_records;
