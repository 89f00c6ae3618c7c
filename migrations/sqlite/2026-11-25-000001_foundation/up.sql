-- Foundation: accounts, organizations, sessions, API keys, audit log, outbox events, settings.
-- Portable types only (see docs/ARCHITECTURE.md): TEXT ids, BIGINT epoch milliseconds, JSON as TEXT.

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_platform_admin BOOLEAN NOT NULL DEFAULT FALSE,
    personal_org_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    is_personal BOOLEAN NOT NULL,
    is_platform BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE memberships (
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'MEMBER', 'BILLING', 'VIEWER')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    refresh_hash TEXT NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL,
    refresh_expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    environment TEXT NOT NULL CHECK (environment IN ('live', 'test')),
    start TEXT NOT NULL,
    last_four TEXT NOT NULL,
    scopes TEXT NOT NULL,
    expires_at BIGINT,
    allowed_ips TEXT NOT NULL,
    metadata TEXT NOT NULL,
    rate_limit TEXT,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_used_at BIGINT,
    last_used_ip TEXT,
    total_requests BIGINT NOT NULL DEFAULT 0,
    revoked_at BIGINT,
    revoked_reason TEXT
);
CREATE INDEX api_keys_org ON api_keys (org_id, id);

-- One row per valid secret of a key: rolling adds a row and gives the previous one an expiry.
CREATE TABLE api_key_secrets (
    key_hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);
CREATE INDEX api_key_secrets_key ON api_key_secrets (key_id);

-- Requests per key per UTC day, added to by the batched counter flush.
CREATE TABLE api_key_usage_daily (
    key_id TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    day TEXT NOT NULL,
    requests BIGINT NOT NULL,
    PRIMARY KEY (key_id, day)
);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    ip TEXT,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_log_org ON audit_log (org_id, id);

-- The outbox: every event a user may subscribe to, written in the transaction of its cause.
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    idempotency_key TEXT,
    created_at BIGINT NOT NULL,
    dispatched_at BIGINT
);
CREATE INDEX events_org ON events (org_id, id);
CREATE UNIQUE INDEX events_idempotency ON events (org_id, idempotency_key);
