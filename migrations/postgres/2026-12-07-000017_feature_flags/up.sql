-- Feature flags: a key, a global default (`enabled`), an optional percentage rollout that is
-- stable per organization, and per-organization overrides that win over both.
CREATE TABLE feature_flags (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    enabled BOOLEAN NOT NULL,
    rollout_percent BIGINT CHECK (rollout_percent BETWEEN 0 AND 100),
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE feature_flag_overrides (
    flag_id TEXT NOT NULL REFERENCES feature_flags(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    enabled BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (flag_id, org_id)
);
