CREATE TABLE usage_records (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    api_key_id TEXT NOT NULL,
    source TEXT NOT NULL,
    operation TEXT NOT NULL,
    status INTEGER NOT NULL,
    latency_us BIGINT NOT NULL,
    request_bytes BIGINT NOT NULL,
    response_bytes BIGINT NOT NULL,
    cost_units BIGINT NOT NULL,
    quota_units BIGINT NOT NULL,
    occurred_at BIGINT NOT NULL
);
CREATE INDEX usage_records_time ON usage_records (occurred_at);

-- Each record back to a row; its id is the segment's and the record's position.
INSERT INTO usage_records
SELECT s.id || '-' || r.key, s.org_id, r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4,
       r.value ->> 5, r.value ->> 6, r.value ->> 7, r.value ->> 8, r.value ->> 9
FROM usage_segments s, json_each(s.records) r;

DROP TABLE usage_segments;
