-- Marketplace analytics for an app's owner: every install and uninstall as it happened (written
-- in the transaction of the change), and calls by app across installing organizations (the
-- roll-ups' credential column holds `app_…` for calls made with an OAuth access token).
CREATE TABLE app_install_log (
    app_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    -- install | uninstall
    kind TEXT NOT NULL CHECK (kind IN ('install', 'uninstall')),
    at BIGINT NOT NULL
);
CREATE INDEX app_install_log_app ON app_install_log (app_id, at);
CREATE INDEX usage_rollups_credential ON usage_rollups (api_key_id, granularity, level, bucket_start);
