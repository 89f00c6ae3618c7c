-- Per-operation costs (SPEC §3): a GraphQL root field (`Query.usageHistory`) or a REST route
-- (`GET /api/v1/analytics/usage`) that counts as more than one request against rate windows and
-- the monthly quota. Absent = 1.
CREATE TABLE operation_costs (
    operation TEXT PRIMARY KEY,
    cost BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
