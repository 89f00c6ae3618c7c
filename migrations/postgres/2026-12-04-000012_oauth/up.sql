-- OAuth 2.0 (SPEC §6): installations (an organization's grant to an app), authorization codes and
-- tokens. Codes and tokens are stored as keyed hashes only; every token belongs to a grant (the
-- family issued from one code, or from one client-credentials request), so a replayed code or a
-- reused refresh token revokes its whole family, and an uninstall revokes every grant of the
-- installation.

CREATE TABLE app_installations (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES organizations (id),
    -- JSON array: the scopes granted (within the app's requested scopes).
    scopes TEXT NOT NULL,
    installed_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    uninstalled_at BIGINT,
    UNIQUE (app_id, org_id)
);
CREATE INDEX app_installations_org ON app_installations (org_id, id);

CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    installation_id TEXT NOT NULL REFERENCES app_installations (id) ON DELETE CASCADE,
    org_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scopes TEXT NOT NULL,
    -- PKCE (RFC 7636): the S256 challenge, when the client sent one.
    code_challenge TEXT,
    -- The grant its exchange started (set when it is used: a replay revokes it).
    grant_id TEXT,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE oauth_tokens (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    grant_id TEXT NOT NULL,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    -- NULL for client credentials (the app acting as itself on its owner organization).
    installation_id TEXT,
    org_id TEXT NOT NULL,
    user_id TEXT,
    scopes TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- A refresh token is used once: rotating it sets this; presenting it again is reuse.
    used_at BIGINT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX oauth_tokens_grant ON oauth_tokens (grant_id);
CREATE INDEX oauth_tokens_installation ON oauth_tokens (installation_id);
