-- Concurrent GraphQL subscriptions a principal (a key, or a user in an organization) may hold
-- open across every node; NULL: no cap.
ALTER TABLE plans ADD COLUMN max_subscriptions BIGINT;
UPDATE plans SET max_subscriptions = 10 WHERE slug = 'starter';
UPDATE plans SET max_subscriptions = 100 WHERE slug = 'pro';
UPDATE plans SET max_subscriptions = 1000 WHERE slug = 'enterprise';
