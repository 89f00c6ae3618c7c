-- Marketplace apps (SPEC §6): the apps organizations list, their OAuth client secrets, and the
-- reviews users write, with helpful votes. Portable types only; the full-text index over name and
-- description is backend-specific (PostgreSQL: a GIN expression index; SQLite: the FTS5 table
-- `fts_apps`) and searched the same way on both.

CREATE TABLE apps (
    id TEXT PRIMARY KEY,
    -- The owner organization.
    org_id TEXT NOT NULL REFERENCES organizations (id),
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    long_description TEXT NOT NULL,
    category TEXT NOT NULL CHECK (category IN ('integrations', 'analytics', 'automation', 'communication',
        'storage', 'security', 'developer_tools', 'workflow_automation')),
    icon_url TEXT,
    version TEXT NOT NULL,
    pricing_model TEXT NOT NULL CHECK (pricing_model IN ('free', 'fixed', 'usage_based', 'freemium')),
    -- Minor units of `price_currency` per month (FIXED, FREEMIUM) or per 1,000 calls (USAGE_BASED).
    price_amount BIGINT,
    price_currency TEXT NOT NULL,
    -- JSON arrays of strings.
    features TEXT NOT NULL,
    scopes TEXT NOT NULL,
    docs_url TEXT,
    support_url TEXT,
    status TEXT NOT NULL CHECK (status IN ('draft', 'pending', 'approved', 'rejected', 'active', 'deprecated')),
    -- Why a platform administrator rejected the app (shown to its owner).
    review_reason TEXT,
    reviewed_by TEXT,
    reviewed_at BIGINT,
    submitted_at BIGINT,
    published_at BIGINT,
    deprecated_at BIGINT,
    is_featured BOOLEAN NOT NULL DEFAULT FALSE,
    -- Active installations, reviews and the sum of their ratings: changed by increments in the
    -- transaction that changes what they count, so they stay exact under concurrent writes.
    install_count BIGINT NOT NULL DEFAULT 0,
    rating_count BIGINT NOT NULL DEFAULT 0,
    rating_sum BIGINT NOT NULL DEFAULT 0,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX apps_org ON apps (org_id, id);
CREATE INDEX apps_listed ON apps (status, category, id);

-- The app as an OAuth 2.0 client (seed 001 §8.2): one row per app, its client_id is the app id.
CREATE TABLE app_clients (
    app_id TEXT PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    client_type TEXT NOT NULL CHECK (client_type IN ('confidential', 'public')),
    -- JSON array of the exact redirect URIs.
    redirect_uris TEXT NOT NULL,
    access_token_ttl_secs BIGINT NOT NULL,
    refresh_token_ttl_secs BIGINT NOT NULL,
    -- The app's own rate limits (JSON, as a key's override), within the installing plan's.
    rate_limit TEXT,
    updated_at BIGINT NOT NULL
);

-- Client secrets of confidential apps, as keyed hashes; a rotated-out secret works until expires_at.
CREATE TABLE app_secrets (
    secret_hash TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    last_four TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);
CREATE INDEX app_secrets_app ON app_secrets (app_id);

CREATE TABLE app_reviews (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    rating BIGINT NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment TEXT,
    helpful_count BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (app_id, user_id)
);
CREATE INDEX app_reviews_app ON app_reviews (app_id, id);

-- One helpful vote per user per review.
CREATE TABLE app_review_votes (
    review_id TEXT NOT NULL REFERENCES app_reviews (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (review_id, user_id)
);

-- Full-text search: an FTS5 index of name and description kept in step with `apps` by triggers
-- (its own rowids: a table without an INTEGER PRIMARY KEY may renumber its rowids on VACUUM);
-- lower-cased words, no stemming, no diacritics folding (as PostgreSQL's `simple` configuration),
-- matched by prefix.
CREATE VIRTUAL TABLE fts_apps USING fts5(app_id UNINDEXED, name, description,
    tokenize = 'unicode61 remove_diacritics 0');
CREATE TRIGGER apps_fts_insert AFTER INSERT ON apps BEGIN
    INSERT INTO fts_apps (app_id, name, description) VALUES (new.id, new.name, new.description);
END;
CREATE TRIGGER apps_fts_delete AFTER DELETE ON apps BEGIN
    DELETE FROM fts_apps WHERE app_id = old.id;
END;
CREATE TRIGGER apps_fts_update AFTER UPDATE OF name, description ON apps BEGIN
    DELETE FROM fts_apps WHERE app_id = old.id;
    INSERT INTO fts_apps (app_id, name, description) VALUES (new.id, new.name, new.description);
END;
