-- Billing, continued: an organization's spend cap, billable metrics over reported usage priced
-- per plan, and the marketplace revenue share.

-- The most the organization will pay for request overage in a month (minor units); reaching it
-- turns an overage plan's quota back into a hard stop. NULL: no cap.
ALTER TABLE subscriptions ADD COLUMN spend_cap_cents BIGINT;

-- A billable metric aggregates the events reported with `recordUsage` under `code` per billing
-- month: `count` (events), `sum` / `max` (of the quantity, or of the numeric property
-- `field_name`), `unique_count` (distinct values of the property `field_name`).
CREATE TABLE billable_metrics (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    aggregation TEXT NOT NULL CHECK (aggregation IN ('count', 'sum', 'max', 'unique_count')),
    field_name TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- What a plan charges for a metric: `free_units` included, the rest by `model` over `tiers`
-- (the JSON list of the request overage; `package`: `package_size` units per started package at
-- the first tier's unit price).
CREATE TABLE plan_charges (
    plan_id TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    metric_id TEXT NOT NULL REFERENCES billable_metrics(id) ON DELETE CASCADE,
    model TEXT NOT NULL CHECK (model IN ('graduated', 'volume', 'package')),
    tiers TEXT NOT NULL,
    package_size BIGINT NOT NULL DEFAULT 1,
    free_units BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (plan_id, metric_id)
);

-- The revenue share of each paid app line, written in the transaction that marks its invoice
-- paid: once per invoice and app.
CREATE TABLE app_earnings (
    invoice_id TEXT NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
    app_id TEXT NOT NULL,
    developer_org_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    gross_cents BIGINT NOT NULL,
    developer_cents BIGINT NOT NULL,
    platform_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (invoice_id, app_id)
);
CREATE INDEX app_earnings_app ON app_earnings (app_id, created_at);
CREATE INDEX app_earnings_created ON app_earnings (created_at);
