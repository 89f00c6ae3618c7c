-- Teams: invitations by email, single-use email tokens (verification, password reset), plan caps
-- on members and API keys, and the states an administrator or an owner puts users and
-- organizations in (suspended; deleted, then purged).

ALTER TABLE users ADD COLUMN email_verified_at BIGINT;
-- A suspended user cannot sign in and has no live session.
ALTER TABLE users ADD COLUMN suspended_at BIGINT;
ALTER TABLE users ADD COLUMN suspended_reason TEXT;
-- An erased user: personal data replaced, sessions and memberships gone; the row stays for what
-- refers to it (audit entries, invoices).
ALTER TABLE users ADD COLUMN deleted_at BIGINT;

-- A suspended organization's credentials are refused and its webhooks wait; nothing is deleted.
ALTER TABLE organizations ADD COLUMN suspended_at BIGINT;
ALTER TABLE organizations ADD COLUMN suspended_reason TEXT;
-- A deleted organization is refused like a suspended one; its data is removed after `purge_after`
-- (the export window), keeping what billing must keep.
ALTER TABLE organizations ADD COLUMN deleted_at BIGINT;
ALTER TABLE organizations ADD COLUMN purge_after BIGINT;
ALTER TABLE organizations ADD COLUMN purged_at BIGINT;

-- Members (memberships plus pending invitations) and active API keys per organization. NULL: no cap.
ALTER TABLE plans ADD COLUMN max_members BIGINT;
ALTER TABLE plans ADD COLUMN max_api_keys BIGINT;
UPDATE plans SET max_members = 10, max_api_keys = 100 WHERE id = 'pln_0000000000000000000starter';
UPDATE plans SET max_members = 100, max_api_keys = 1000 WHERE id = 'pln_00000000000000000000000pro';

-- An invitation to join an organization with a role. The token is mailed and stored as a keyed
-- hash; it works once, until `expires_at`. One pending invitation per organization and email.
CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'MEMBER', 'BILLING', 'VIEWER')),
    token_hash TEXT NOT NULL UNIQUE,
    invited_by_type TEXT NOT NULL,
    invited_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    sent_count BIGINT NOT NULL DEFAULT 1,
    last_sent_at BIGINT NOT NULL,
    accepted_at BIGINT,
    accepted_by TEXT,
    revoked_at BIGINT
);
CREATE INDEX invitations_org ON invitations (org_id, id);
CREATE UNIQUE INDEX invitations_pending ON invitations (org_id, email) WHERE accepted_at IS NULL AND revoked_at IS NULL;

-- Single-use tokens mailed to a user: `verify_email` (for the address it was sent to) and
-- `reset_password`. Stored as keyed hashes.
CREATE TABLE user_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    email TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX user_tokens_user ON user_tokens (user_id, purpose);
