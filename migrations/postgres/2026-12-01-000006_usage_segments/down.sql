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
SELECT s.id || '-' || (r.n - 1), s.org_id, r.v ->> 0, r.v ->> 1, r.v ->> 2, (r.v ->> 3)::int, (r.v ->> 4)::bigint,
       (r.v ->> 5)::bigint, (r.v ->> 6)::bigint, (r.v ->> 7)::bigint, (r.v ->> 8)::bigint, (r.v ->> 9)::bigint
FROM usage_segments s, json_array_elements(s.records::json) WITH ORDINALITY AS r(v, n);

DROP TABLE usage_segments;
