ALTER TABLE plans DROP COLUMN max_subscriptions;
