-- Billing (SPEC §7): subscriptions, invoices and their lines, payment methods and payments, and
-- the installation's gap-free invoice number. Money is integer minor units; unit prices that need
-- fractions of a cent are integer micro-units (millionths of the currency's major unit).

-- A plan's monthly quota is either refused past it (`hard`) or included, with the requests past
-- it served and billed by the graduated tiers (`overage`). Tiers: a JSON list of
-- {"upTo": requests or null for the last, "unitPriceMicros": price per request}, over the
-- month's total; requests within the included quota are never charged.
ALTER TABLE plans ADD COLUMN quota_mode TEXT NOT NULL DEFAULT 'hard';
ALTER TABLE plans ADD COLUMN overage_tiers TEXT NOT NULL DEFAULT '[]';
UPDATE plans SET quota_mode = 'overage',
  overage_tiers = '[{"upTo":20000000,"unitPriceMicros":100},{"upTo":50000000,"unitPriceMicros":80},{"upTo":null,"unitPriceMicros":50}]'
  WHERE slug = 'pro';

-- One per organization. `plan_id` is what the organization pays for; `organizations.plan_id` is
-- what it is served with (the Starter plan while SUSPENDED). Periods are UTC calendar months (an
-- annual period is twelve of them); `billed_through` is the start of the first month whose usage is
-- not invoiced yet.
CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL UNIQUE REFERENCES organizations(id) ON DELETE CASCADE,
    plan_id TEXT NOT NULL REFERENCES plans(id),
    status TEXT NOT NULL,
    billing_cycle TEXT NOT NULL,
    current_period_start BIGINT NOT NULL,
    current_period_end BIGINT NOT NULL,
    cancel_at_period_end BOOLEAN NOT NULL DEFAULT FALSE,
    scheduled_plan_id TEXT REFERENCES plans(id),
    scheduled_cycle TEXT,
    billed_through BIGINT NOT NULL,
    canceled_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX subscriptions_billed_through ON subscriptions (billed_through);

-- `number` is given at finalization from the counter below, in the same transaction, so numbers
-- have no gaps. `period_key` (YYYY-MM of the month whose usage it bills) is set on period
-- invoices only: one per organization and month, whichever node closes it.
CREATE TABLE invoices (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
    number BIGINT UNIQUE,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    currency TEXT NOT NULL,
    period_key TEXT,
    period_start BIGINT NOT NULL,
    period_end BIGINT NOT NULL,
    total_cents BIGINT NOT NULL,
    amount_paid_cents BIGINT NOT NULL DEFAULT 0,
    due_at BIGINT,
    attempt_count BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    -- A node charging the invoice holds it until then (a crashed charge is retried after).
    claimed_until BIGINT,
    finalized_at BIGINT,
    paid_at BIGINT,
    voided_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (org_id, period_key)
);
CREATE INDEX invoices_org ON invoices (org_id, id);
CREATE INDEX invoices_next_attempt ON invoices (next_attempt_at);

CREATE TABLE invoice_lines (
    invoice_id TEXT NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    kind TEXT NOT NULL,
    description TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    period_end BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    unit_price_micros BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL,
    plan_id TEXT,
    app_id TEXT,
    PRIMARY KEY (invoice_id, position)
);

CREATE TABLE billing_counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO billing_counters (name, value) VALUES ('invoice_number', 0);

-- Only what a card can be shown by: brand, last four digits, expiry. The provider's reference
-- stands for the card in charges.
CREATE TABLE payment_methods (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    brand TEXT NOT NULL,
    last4 TEXT NOT NULL,
    exp_month BIGINT NOT NULL,
    exp_year BIGINT NOT NULL,
    provider_ref TEXT NOT NULL,
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    removed_at BIGINT
);
CREATE INDEX payment_methods_org ON payment_methods (org_id, id);

-- Every charge attempt, by its idempotency key (invoice and attempt number): a retried call after
-- a crash charges once.
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    invoice_id TEXT NOT NULL REFERENCES invoices(id) ON DELETE CASCADE,
    payment_method_id TEXT,
    amount_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    failure_code TEXT,
    idempotency_key TEXT NOT NULL UNIQUE,
    provider_ref TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX payments_invoice ON payments (invoice_id);
