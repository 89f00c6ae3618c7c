DROP TABLE payments;
DROP TABLE payment_methods;
DROP TABLE billing_counters;
DROP TABLE invoice_lines;
DROP TABLE invoices;
DROP TABLE subscriptions;
ALTER TABLE plans DROP COLUMN overage_tiers;
ALTER TABLE plans DROP COLUMN quota_mode;
