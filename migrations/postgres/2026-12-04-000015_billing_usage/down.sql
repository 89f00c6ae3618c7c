DROP TABLE app_earnings;
DROP TABLE plan_charges;
DROP TABLE billable_metrics;
ALTER TABLE subscriptions DROP COLUMN spend_cap_cents;
