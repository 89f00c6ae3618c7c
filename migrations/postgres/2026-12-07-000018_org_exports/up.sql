-- Organization exports: a background job writes the JSON document in chunks (so neither the job
-- nor a download holds it whole), downloadable through a signed link until `expires_at`.
CREATE TABLE org_exports (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    requested_by TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'ready', 'failed', 'expired')),
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    claimed_until BIGINT,
    bytes BIGINT NOT NULL DEFAULT 0,
    chunks BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    expires_at BIGINT
);
CREATE INDEX org_exports_org ON org_exports (org_id, id);
CREATE INDEX org_exports_status ON org_exports (status, created_at);

CREATE TABLE org_export_chunks (
    export_id TEXT NOT NULL REFERENCES org_exports(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (export_id, seq)
);
