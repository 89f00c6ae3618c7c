//! Gantry: a self-hosted, GraphQL-first developer platform server — API keys, limits, usage,
//! webhooks, OAuth apps and billing behind one GraphQL schema. See docs/ARCHITECTURE.md.

pub mod accounts;
pub mod admin;
pub mod alerts;
pub mod app;
pub mod apps;
pub mod auth;
pub mod billing;
pub mod config;
pub mod error;
pub mod events;
pub mod exports;
pub mod features;
pub mod graphql;
pub mod keys;
pub mod limits;
pub mod oauth;
pub mod pagination;
pub mod platform;
pub mod rest;
pub mod server;
pub mod usage;
pub mod webhooks;

/// Initialises structured logging (text or JSON) from the configuration; `RUST_LOG` wins.
pub fn init_tracing(config: &config::Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log));
    use std::io::IsTerminal;
    // Colours only on a terminal: log files and collectors get plain text (and it is cheaper).
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(std::io::stdout().is_terminal());
    let _ = if config.log_format == "json" { builder.json().try_init() } else { builder.try_init() };
}
