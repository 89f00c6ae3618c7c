-- Usage metering (SPEC §4): one raw record per API call, written in batches by the usage writer
-- (never on the request path), and the hourly and daily roll-ups every analytics answer reads.

CREATE TABLE usage_records (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    -- The key (or, later, the OAuth app) that made the call; '' for a signed-in user.
    api_key_id TEXT NOT NULL,
    -- graphql | rest | verify
    source TEXT NOT NULL,
    -- GraphQL: the operation name or its root fields (`query viewer`); REST: `GET /api/v1/keys/{id}`.
    operation TEXT NOT NULL,
    status INTEGER NOT NULL,
    latency_us BIGINT NOT NULL,
    request_bytes BIGINT NOT NULL,
    response_bytes BIGINT NOT NULL,
    cost_units BIGINT NOT NULL,
    -- 1 when the call was charged against the monthly quota (admitted by the limiter).
    quota_units BIGINT NOT NULL,
    occurred_at BIGINT NOT NULL
);
CREATE INDEX usage_records_time ON usage_records (occurred_at);

-- granularity: 'hour' or 'day'; bucket_start: epoch ms of the hour / UTC day. Cells form a small
-- cube, one level per question: 0 = per key and operation, 1 = per key (operation '*'),
-- 2 = per operation (key '*'), 3 = everything (both '*'). The key leads with the level, so a
-- question reads one contiguous range.
CREATE TABLE usage_rollups (
    granularity TEXT NOT NULL,
    org_id TEXT NOT NULL,
    level INTEGER NOT NULL,
    bucket_start BIGINT NOT NULL,
    api_key_id TEXT NOT NULL,
    operation TEXT NOT NULL,
    status INTEGER NOT NULL,
    calls BIGINT NOT NULL,
    latency_us_sum BIGINT NOT NULL,
    request_bytes BIGINT NOT NULL,
    response_bytes BIGINT NOT NULL,
    cost_units BIGINT NOT NULL,
    quota_units BIGINT NOT NULL,
    PRIMARY KEY (granularity, org_id, level, bucket_start, api_key_id, operation, status)
);

-- Latency histogram per roll-up cell (all statuses), one row: sparse `bin:count,…` text where bin i
-- counts latencies in [1.05^i, 1.05^(i+1)) microseconds, so a percentile read from it is within
-- 2.5 %. Merged by the usage writer.
CREATE TABLE usage_latency (
    granularity TEXT NOT NULL,
    org_id TEXT NOT NULL,
    level INTEGER NOT NULL,
    bucket_start BIGINT NOT NULL,
    api_key_id TEXT NOT NULL,
    operation TEXT NOT NULL,
    histogram TEXT NOT NULL,
    PRIMARY KEY (granularity, org_id, level, bucket_start, api_key_id, operation)
);

-- Metered usage the operator's backend reports (`recordUsage`); billing reads it.
CREATE TABLE metered_events (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    metric TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    -- JSON object, as text.
    properties TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    recorded_by TEXT NOT NULL,
    UNIQUE (org_id, idempotency_key)
);
CREATE INDEX metered_events_org_metric_time ON metered_events (org_id, metric, occurred_at);
