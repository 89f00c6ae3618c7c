//! Retention of authorization codes and tokens: a token is kept until a day after it expires (a
//! used refresh token must stay until then, so presenting it again is still seen as reuse); a
//! code until a day after it expires, or, once used, for as long as the longest refresh token
//! issued from it can live (a replay must still revoke what it issued). Runs from the periodic
//! flush at most once an hour, on any node (deletes are idempotent).

use std::sync::atomic::Ordering;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::app::App;
use crate::error::{Error, Result};
use crate::platform::db::schema::{oauth_codes, oauth_tokens};
use crate::transaction;

const DAY_MS: i64 = 86_400_000;
/// The longest refresh token lifetime an app may set (365 days).
const MAX_REFRESH_MS: i64 = 365 * DAY_MS;

/// Rows deleted by one run: (codes, tokens).
pub async fn prune(app: &App, now_ms: i64) -> Result<(usize, usize)> {
    let cutoff = now_ms - DAY_MS;
    let used_cutoff = now_ms - MAX_REFRESH_MS - DAY_MS;
    let pruned = transaction!(app.db, c => {
        let codes = diesel::delete(
            oauth_codes::table.filter(
                oauth_codes::used_at.is_null().and(oauth_codes::expires_at.lt(cutoff))
                    .or(oauth_codes::used_at.lt(used_cutoff)),
            ),
        )
        .execute(c).await?;
        let tokens = diesel::delete(oauth_tokens::table.filter(oauth_tokens::expires_at.lt(cutoff))).execute(c).await?;
        Ok::<_, Error>((codes, tokens))
    })?;
    if pruned != (0, 0) {
        tracing::info!(codes = pruned.0, tokens = pruned.1, "oauth retention");
    }
    Ok(pruned)
}

/// Runs [`prune`] if this node has not run it in the last hour.
pub async fn maybe_prune(app: &App) {
    let now = app.clock.now_ms();
    // Spelled out: `RunQueryDsl::load` is in scope too.
    if now - std::sync::atomic::AtomicI64::load(&app.oauth_pruned_at_ms, Ordering::Relaxed) < 3_600_000 {
        return;
    }
    app.oauth_pruned_at_ms.store(now, Ordering::Relaxed);
    if let Err(e) = prune(app, now).await {
        e.log();
    }
}
