-- Every address an API key has been used from (SPEC §2: a key used from a new IP is audited and
-- published as `key.used_from_new_ip`). Written by the batched key-usage flush.
CREATE TABLE api_key_ips (
    key_id TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    ip TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    PRIMARY KEY (key_id, ip)
);
