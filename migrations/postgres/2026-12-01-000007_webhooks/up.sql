-- Webhooks (SPEC §5): the event catalog, endpoints and their signing secrets, deliveries (one per
-- event and matching endpoint) and every delivery attempt. Portable types only.

-- Operator-defined event types; Gantry's own types are built in (src/webhooks/catalog.rs).
CREATE TABLE event_types (
    name TEXT PRIMARY KEY,
    category TEXT NOT NULL,
    description TEXT NOT NULL,
    -- JSON Schema of the payload, as text.
    payload_schema TEXT NOT NULL,
    -- A sample payload (JSON), sent by test events.
    sample TEXT NOT NULL,
    deprecated BOOLEAN NOT NULL DEFAULT FALSE,
    archived_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    url TEXT NOT NULL,
    description TEXT,
    -- JSON array of filters: exact names, `category.*`, `*`.
    event_filter TEXT NOT NULL,
    -- JSON object of extra request headers.
    headers TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    disabled_reason TEXT,
    rate_limit_per_second BIGINT,
    -- JSON array of seconds between attempts; NULL = the default schedule.
    retry_schedule TEXT,
    timeout_ms BIGINT NOT NULL,
    metadata TEXT NOT NULL,
    -- When the current run of failures began (NULL when the last attempt succeeded).
    failing_since BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id, id);

-- Signing secrets: the secret itself is derived from the server secret and `seed`, so the database
-- alone does not reveal it. A rotated-out secret keeps signing until `expires_at`.
CREATE TABLE webhook_secrets (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    seed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);
CREATE INDEX webhook_secrets_endpoint ON webhook_secrets (endpoint_id);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    -- pending | succeeded | failed
    status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts BIGINT NOT NULL,
    -- When the next attempt is due (a claim moves it forward by the lease); NULL once final.
    next_attempt_at BIGINT,
    -- While an attempt is in flight: when its claim ends (the endpoint's timeout plus a margin).
    leased_until BIGINT,
    last_status_code BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (event_id, endpoint_id);

CREATE TABLE webhook_attempts (
    id TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    url TEXT NOT NULL,
    request_headers TEXT NOT NULL,
    request_body TEXT NOT NULL,
    response_status BIGINT,
    response_headers TEXT,
    response_body TEXT,
    latency_ms BIGINT NOT NULL,
    -- NULL on success; timeout | connection | tls | http_status | refused (SSRF guard)
    error_kind TEXT,
    error_message TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);

-- Webhook endpoints per organization, by plan (NULL = unlimited).
ALTER TABLE plans ADD COLUMN max_webhook_endpoints BIGINT;
UPDATE plans SET max_webhook_endpoints = 5 WHERE slug = 'starter';
UPDATE plans SET max_webhook_endpoints = 50 WHERE slug = 'pro';

-- Test events (sendTestWebhookEvent) go to one endpoint and stay out of the organization's event list.
ALTER TABLE events ADD COLUMN is_test BOOLEAN NOT NULL DEFAULT FALSE;

-- Events written before webhooks existed had no endpoints to go to.
UPDATE events SET dispatched_at = created_at WHERE dispatched_at IS NULL;
CREATE INDEX events_undispatched ON events (id) WHERE dispatched_at IS NULL;
