-- Usage alerts (SPEC §4): raised from the request path (quota thresholds, rate-limit refusals)
-- and by the periodic evaluator (error spike, latency degradation, unusual activity); one active
-- alert per organization and condition (`dedupe_key`), acknowledged by users, resolved
-- automatically when the condition clears.
CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    -- quota_threshold | rate_limit_exceeded | error_spike | latency_degradation | unusual_activity
    kind TEXT NOT NULL,
    -- LOW | MEDIUM | HIGH | CRITICAL
    severity TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    title TEXT NOT NULL,
    -- JSON object, as text.
    data TEXT NOT NULL,
    occurrences BIGINT NOT NULL,
    triggered_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    acknowledged_at BIGINT,
    acknowledged_by TEXT,
    resolved_at BIGINT
);
CREATE UNIQUE INDEX alerts_active ON alerts (org_id, dedupe_key) WHERE resolved_at IS NULL;
CREATE INDEX alerts_org ON alerts (org_id, id);
