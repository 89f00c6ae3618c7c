//! Configuration: defaults → optional `gantry.toml` (or the file named by `GANTRY_CONFIG`) →
//! `GANTRY_*` environment, plus the conventional `DATABASE_URL` and `REDIS_URL`. Validated once at
//! start-up with messages that name the option. `cargo run` needs none of it.

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub bind: SocketAddr,
    /// The URL clients reach this server at (`https://api.example.com`): the OAuth issuer and the
    /// base of the endpoints it advertises. Unset = `http://` and the bind address.
    pub public_url: Option<String>,
    /// Where the embedded SQLite database lives.
    pub data_dir: PathBuf,
    /// `postgres://…` selects PostgreSQL; unset = SQLite in `data_dir`. A `sqlite://PATH` URL
    /// names an explicit SQLite file.
    pub database_url: Option<String>,
    /// `redis://…` selects Redis for the bus and caches; unset = in-process.
    pub redis_url: Option<String>,
    /// Prefix of Redis keys and pub/sub channels (several installations can share one Redis).
    pub redis_prefix: String,
    /// Maximum connections in the database pool.
    pub database_pool_size: usize,
    /// The server secret (≥ 32 bytes, hex or base64). Unset = generated once and stored in the
    /// database, shared by every node.
    pub secret: Option<String>,
    /// `text` or `json` log lines.
    pub log_format: String,
    /// Log filter (tracing `EnvFilter` syntax); `RUST_LOG` wins when set.
    pub log: String,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest a database statement (PostgreSQL) or a wait for the SQLite write lock may take.
    pub database_timeout_secs: u64,
    /// Deepest GraphQL selection accepted.
    pub graphql_max_depth: usize,
    /// Largest GraphQL complexity accepted (each field 1, connections × page size).
    pub graphql_max_complexity: usize,
    /// Lifetime of a session access token.
    pub session_ttl_secs: i64,
    /// Lifetime of a session refresh token.
    pub refresh_ttl_secs: i64,
    /// How long a verified key stays in the per-node cache (revocation clears it on every node).
    pub key_cache_ttl_secs: u64,
    /// How often per-key counters (`lastUsedAt`, `totalRequests`) are written to the database.
    pub usage_flush_interval_ms: u64,
    /// Usage records buffered in memory before the writer takes them; past it records are dropped
    /// and counted (a request never waits on metering).
    pub usage_buffer: usize,
    /// Usage records written per batch (one multi-row insert); a full batch is written at once.
    pub usage_batch_size: usize,
    /// Days raw usage records (and hourly roll-ups) are kept; daily roll-ups are kept.
    pub usage_retention_days: i64,
    /// Take the client IP from `X-Forwarded-For` (only behind a proxy you trust).
    pub trust_proxy: bool,
    /// While Redis is unreachable: `local` (per-node limits), `open` (admit all), `closed` (refuse all).
    pub limiter_fallback: crate::limits::limiter::Fallback,
    /// Run the webhook dispatcher and delivery workers in this process (`serve --workers=false`
    /// turns them off; `gantry worker` runs them alone).
    pub workers: bool,
    /// Allow `http://` webhook endpoints (https only by default).
    pub webhook_allow_http: bool,
    /// Networks webhooks may reach although they are internal (CIDRs, comma-separated), e.g.
    /// `127.0.0.0/8` for a receiver on the same machine. Everything internal is refused otherwise.
    #[serde(deserialize_with = "networks")]
    pub webhook_allowed_networks: Vec<ipnet::IpNet>,
    /// Webhook requests in flight per node.
    pub webhook_concurrency: usize,
    /// How often a worker looks for due retries when nothing wakes it (milliseconds).
    pub webhook_poll_interval_ms: u64,
    /// An endpoint failing continuously for this long is disabled (default 5 days).
    pub webhook_disable_after_secs: i64,
    /// An endpoint whose last this-many attempts all failed is disabled too (0, the default: no
    /// such limit, only the duration above).
    pub webhook_disable_after_failures: i64,
    /// A worker's claim on a delivery lasts the endpoint's timeout plus this margin (for
    /// recording the outcome); a crashed node's deliveries come due again when it ends.
    pub webhook_lease_margin_secs: i64,
    /// Days webhook attempts, final deliveries and dispatched events are kept.
    pub webhook_retention_days: i64,
    /// Days between the failed charge of an invoice and the next automatic attempt, one entry per
    /// retry; after the last retry fails the subscription is SUSPENDED.
    #[serde(deserialize_with = "day_list")]
    pub billing_retry_days: Vec<i64>,
    /// `smtp://host:port` (plain), `smtp://host:port?tls=required` (STARTTLS) or `smtps://host`
    /// (TLS), with `user:password@` when the server wants them. Unset: mail is written as `.eml`
    /// files under `<data_dir>/mail`.
    pub smtp_url: Option<String>,
    /// The sender of Gantry's mail (`Name <address>` or an address).
    pub mail_from: String,
    /// How long an invitation's link works.
    pub invitation_ttl_days: i64,
    /// Days a deleted organization's data is kept (the export window) before it is purged.
    pub org_purge_after_days: i64,
    /// When set, `GET /metrics` needs `Authorization: Bearer <this token>`.
    pub metrics_token: Option<String>,
    /// Origins a browser may call the API from (`https://app.example.com`, comma-separated), or
    /// `*` for any; none by default.
    #[serde(deserialize_with = "origins")]
    pub cors_origins: Vec<String>,
}

/// A list of day counts from a list or a comma-separated string (environment variables).
fn day_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Days {
        One(String),
        Many(Vec<i64>),
    }
    let list = match Days::deserialize(d)? {
        Days::Many(v) => v,
        Days::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<i64>().map_err(|_| {
                    serde::de::Error::custom(format!("`{s}` is not a number of days (billing_retry_days)"))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    if list.iter().any(|d| !(1..=60).contains(d)) || list.len() > 10 {
        return Err(serde::de::Error::custom("billing_retry_days: up to 10 retries, each 1 to 60 days"));
    }
    Ok(list)
}

/// Browser origins from a list or a comma-separated string: `*`, or `scheme://host[:port]` each.
fn origins<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Origins {
        One(String),
        Many(Vec<String>),
    }
    let list: Vec<String> = match Origins::deserialize(d)? {
        Origins::One(s) => s.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        Origins::Many(v) => v,
    };
    for o in &list {
        let ok = o == "*"
            || url::Url::parse(o).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.path() == "/" && !o.ends_with('/')
            });
        if !ok {
            return Err(serde::de::Error::custom(format!(
                "`{o}` is not an origin (cors_origins): `*` or scheme://host[:port], without a path"
            )));
        }
    }
    Ok(list)
}

/// A list of networks from a list or a comma-separated string (environment variables).
fn networks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Nets {
        One(String),
        Many(Vec<String>),
    }
    let list = match Nets::deserialize(d)? {
        Nets::One(s) => s.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        Nets::Many(v) => v,
    };
    list.iter()
        .map(|s| {
            s.parse::<ipnet::IpNet>().or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)).map_err(|_| {
                serde::de::Error::custom(format!("`{s}` is not a CIDR network (webhook_allowed_networks)"))
            })
        })
        .collect()
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".parse().expect("valid literal"),
            public_url: None,
            data_dir: PathBuf::from("./data"),
            database_url: None,
            redis_url: None,
            redis_prefix: "gantry".into(),
            database_pool_size: 16,
            secret: None,
            log_format: "text".into(),
            log: "info".into(),
            max_body_bytes: 1024 * 1024,
            database_timeout_secs: 30,
            graphql_max_depth: 15,
            graphql_max_complexity: 5000,
            session_ttl_secs: 3600,
            refresh_ttl_secs: 30 * 24 * 3600,
            key_cache_ttl_secs: 30,
            usage_flush_interval_ms: 1000,
            usage_buffer: 100_000,
            usage_batch_size: 2_000,
            usage_retention_days: 90,
            trust_proxy: false,
            limiter_fallback: crate::limits::limiter::Fallback::Local,
            workers: true,
            webhook_allow_http: false,
            webhook_allowed_networks: Vec::new(),
            webhook_concurrency: 64,
            webhook_poll_interval_ms: 500,
            webhook_disable_after_secs: 5 * 86_400,
            webhook_disable_after_failures: 0,
            webhook_lease_margin_secs: 60,
            webhook_retention_days: 90,
            billing_retry_days: vec![3, 5, 7],
            smtp_url: None,
            mail_from: "Gantry <gantry@localhost>".into(),
            invitation_ttl_days: 7,
            org_purge_after_days: 30,
            metrics_token: None,
            cors_origins: Vec::new(),
        }
    }
}

impl Config {
    /// Loads and validates the configuration from every source.
    pub fn load() -> anyhow::Result<Self> {
        let file = std::env::var("GANTRY_CONFIG").unwrap_or_else(|_| "gantry.toml".into());
        if std::env::var("GANTRY_CONFIG").is_ok() && !std::path::Path::new(&file).exists() {
            anyhow::bail!("GANTRY_CONFIG names {file}, which does not exist");
        }
        let figment = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(&file))
            .merge(Env::prefixed("GANTRY_").ignore(&["CONFIG", "SKIP_PLAYGROUND"]))
            .merge(Env::raw().only(&["DATABASE_URL", "REDIS_URL"]));
        let config: Config = figment.extract().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://") || url.starts_with("sqlite://"))
        {
            anyhow::bail!(
                "DATABASE_URL must start with postgres://, postgresql:// or sqlite:// (got a {} URL)",
                scheme(url)
            );
        }
        if let Some(url) = &self.redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            anyhow::bail!("REDIS_URL must start with redis:// or rediss:// (got a {} URL)", scheme(url));
        }
        if !(1..=3600).contains(&self.database_timeout_secs) {
            anyhow::bail!("GANTRY_DATABASE_TIMEOUT_SECS must be between 1 and 3600");
        }
        if let Some(u) = &self.public_url {
            let ok = url::Url::parse(u).is_ok_and(|p| {
                matches!(p.scheme(), "http" | "https")
                    && p.host().is_some()
                    && p.query().is_none()
                    && p.fragment().is_none()
            });
            if !ok {
                anyhow::bail!(
                    "GANTRY_PUBLIC_URL must be an absolute http(s) URL without query or fragment (got `{u}`)"
                );
            }
        }
        if self.database_pool_size == 0 {
            anyhow::bail!("GANTRY_DATABASE_POOL_SIZE must be at least 1");
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            anyhow::bail!("GANTRY_LOG_FORMAT must be `text` or `json`, not `{}`", self.log_format);
        }
        if self.max_body_bytes < 1024 {
            anyhow::bail!("GANTRY_MAX_BODY_BYTES must be at least 1024");
        }
        if self.session_ttl_secs < 60 || self.refresh_ttl_secs < self.session_ttl_secs {
            anyhow::bail!("GANTRY_SESSION_TTL_SECS must be ≥ 60 and ≤ GANTRY_REFRESH_TTL_SECS");
        }
        if self.graphql_max_depth < 3 || self.graphql_max_complexity < 10 {
            anyhow::bail!("GANTRY_GRAPHQL_MAX_DEPTH must be ≥ 3 and GANTRY_GRAPHQL_MAX_COMPLEXITY ≥ 10");
        }
        if self.usage_buffer < 100 || !(1..=10_000).contains(&self.usage_batch_size) {
            anyhow::bail!("GANTRY_USAGE_BUFFER must be ≥ 100 and GANTRY_USAGE_BATCH_SIZE between 1 and 10000");
        }
        if !(1..=3650).contains(&self.usage_retention_days) {
            anyhow::bail!("GANTRY_USAGE_RETENTION_DAYS must be between 1 and 3650");
        }
        if !(1..=10_000).contains(&self.webhook_concurrency) || !(10..=60_000).contains(&self.webhook_poll_interval_ms)
        {
            anyhow::bail!("GANTRY_WEBHOOK_CONCURRENCY must be 1–10000 and GANTRY_WEBHOOK_POLL_INTERVAL_MS 10–60000");
        }
        if !(1..=3650).contains(&self.webhook_retention_days) {
            anyhow::bail!("GANTRY_WEBHOOK_RETENTION_DAYS must be between 1 and 3650");
        }
        if !(1..=3600).contains(&self.webhook_lease_margin_secs) {
            anyhow::bail!("GANTRY_WEBHOOK_LEASE_MARGIN_SECS must be between 1 and 3600");
        }
        if self.webhook_disable_after_secs < 60 {
            anyhow::bail!("GANTRY_WEBHOOK_DISABLE_AFTER_SECS must be at least 60");
        }
        if !(0..=1_000_000).contains(&self.webhook_disable_after_failures) {
            anyhow::bail!("GANTRY_WEBHOOK_DISABLE_AFTER_FAILURES must be between 0 (off) and 1000000");
        }
        if let Some(secret) = &self.secret {
            decode_secret(secret)?;
        }
        if let Some(u) = &self.smtp_url
            && !url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "smtp" | "smtps") && p.host().is_some())
        {
            anyhow::bail!(
                "GANTRY_SMTP_URL must be smtp://host[:port] or smtps://host[:port] (got a {} URL)",
                scheme(u)
            );
        }
        if self.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            anyhow::bail!(
                "GANTRY_MAIL_FROM must be a mail address, optionally with a name (`Gantry <gantry@example.com>`)"
            );
        }
        if self.metrics_token.as_deref().is_some_and(|t| t.trim().len() < 16) {
            anyhow::bail!("GANTRY_METRICS_TOKEN must be at least 16 characters");
        }
        if !(0..=3650).contains(&self.org_purge_after_days) {
            anyhow::bail!("GANTRY_ORG_PURGE_AFTER_DAYS must be between 0 and 3650");
        }
        if !(1..=90).contains(&self.invitation_ttl_days) {
            anyhow::bail!("GANTRY_INVITATION_TTL_DAYS must be between 1 and 90");
        }
        Ok(())
    }
}

fn scheme(url: &str) -> &str {
    url.split_once(':').map(|(s, _)| s).unwrap_or("scheme-less")
}

/// Decodes a configured secret (hex or standard base64), requiring at least 32 bytes.
pub fn decode_secret(s: &str) -> anyhow::Result<Vec<u8>> {
    use base64::Engine;
    let bytes = hex::decode(s.trim())
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(s.trim()))
        .map_err(|_| anyhow::anyhow!("GANTRY_SECRET must be hex or base64"))?;
    if bytes.len() < 32 {
        anyhow::bail!("GANTRY_SECRET must hold at least 32 bytes (got {})", bytes.len());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err, reason = "figment::Jail's own signature")]
    fn the_file_then_the_environment_override_defaults_and_errors_name_the_option() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("gantry.toml", "bind = \"127.0.0.1:9000\"\ndatabase_pool_size = 4\nlog = \"debug\"\n")?;
            jail.set_env("GANTRY_DATABASE_POOL_SIZE", "7");
            jail.set_env("GANTRY_SKIP_PLAYGROUND", "1");
            let c = Config::load().map_err(|e| e.to_string())?;
            assert_eq!(c.bind.port(), 9000, "from the file");
            assert_eq!(c.database_pool_size, 7, "the environment wins over the file");
            assert_eq!(c.log, "debug");
            assert_eq!(c.log_format, "text", "defaults fill the rest");

            jail.set_env("GANTRY_LOG_FORMAT", "xml");
            assert!(Config::load().unwrap_err().to_string().contains("GANTRY_LOG_FORMAT"));
            jail.set_env("GANTRY_LOG_FORMAT", "json");
            jail.set_env("REDIS_URL", "http://localhost");
            assert!(Config::load().unwrap_err().to_string().contains("REDIS_URL"));
            jail.set_env("REDIS_URL", "redis://127.0.0.1:6379");
            jail.set_env("GANTRY_SECRET", "abcd");
            assert!(Config::load().unwrap_err().to_string().contains("GANTRY_SECRET"));
            jail.set_env("GANTRY_SECRET", "00".repeat(32));
            jail.set_env("GANTRY_NOT_AN_OPTION", "1");
            assert!(Config::load().unwrap_err().to_string().contains("not_an_option"), "unknown options are refused");
            Ok(())
        });
    }
}
