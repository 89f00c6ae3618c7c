-- Plans and their limit policies (SPEC §3). Rows the operator edits; NULL limit = unlimited.
CREATE TABLE plans (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    price_cents BIGINT,
    annual_price_cents BIGINT,
    currency TEXT NOT NULL,
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    per_second BIGINT,
    per_minute BIGINT,
    per_hour BIGINT,
    per_day BIGINT,
    burst BIGINT NOT NULL,
    monthly_quota BIGINT,
    concurrency BIGINT,
    max_apps BIGINT,
    query_cost_max BIGINT NOT NULL,
    query_cost_bucket BIGINT NOT NULL,
    query_cost_restore_rate BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

INSERT INTO plans VALUES
 ('pln_0000000000000000000starter', 'starter', 'Starter', 'For trying things out.', 0, 0, 'USD', TRUE,
  10, NULL, NULL, 10000, 10, 100000, 5, 3, 5000, 10000, 500, 0, 0),
 ('pln_00000000000000000000000pro', 'pro', 'Pro', 'For production workloads.', 9900, 118800, 'USD', FALSE,
  50, NULL, NULL, 100000, 50, 10000000, 25, NULL, 10000, 20000, 1000, 0, 0),
 ('pln_0000000000000000enterprise', 'enterprise', 'Enterprise', 'Custom terms and limits.', NULL, NULL, 'USD', FALSE,
  1000, NULL, NULL, 10000000, 1000, NULL, 1000, NULL, 20000, 100000, 5000, 0, 0);

ALTER TABLE organizations ADD COLUMN plan_id TEXT REFERENCES plans(id);
