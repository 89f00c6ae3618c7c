//! Marketplace analytics for an app's owner over a period: installs and uninstalls (from the
//! install log), installations active now, API calls the app made in every installing
//! organization (the usage roll-ups, whose credential column holds the app's id for calls made
//! with its access tokens), its average rating and the reviews written in the period.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;

use super::service::get_app;
use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::platform::db::schema::{app_install_log, app_reviews};
use crate::with_conn;

/// An app's figures over `[start, end)`.
#[derive(Debug, Clone, PartialEq)]
pub struct AppStats {
    pub installs: i64,
    pub uninstalls: i64,
    pub active_installations: i64,
    pub api_calls: i64,
    pub api_errors: i64,
    pub rating: Option<f64>,
    pub review_count: i64,
    pub new_reviews: i64,
}

#[derive(diesel::QueryableByName)]
struct Calls {
    #[diesel(sql_type = BigInt)]
    calls: i64,
    #[diesel(sql_type = BigInt)]
    errors: i64,
}

/// Calls across organizations: the daily roll-up cells of (credential, all operations).
// PostgreSQL's SUM of BIGINT is NUMERIC: cast back.
const CALLS_SQL: &str = "SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) AS calls, \
     CAST(COALESCE(SUM(CASE WHEN status >= 400 THEN calls ELSE 0 END), 0) AS BIGINT) AS errors \
     FROM usage_rollups WHERE api_key_id = $1 AND granularity = 'day' AND level = 1 \
     AND bucket_start >= $2 AND bucket_start < $3";

/// The owner organization's (or a platform administrator's) view of its app (`apps:read`).
pub async fn app_stats(app: &App, principal: &Principal, id: &str, start: i64, end: i64) -> Result<AppStats> {
    principal.require_scope("apps:read")?;
    let row = get_app(app, Some(principal), id).await?;
    let is_admin = principal.is_platform_admin();
    if row.org_id != principal.org_id {
        if !is_admin {
            return Err(Error::forbidden("only the app's owner organization sees its analytics"));
        }
        crate::admin::service::record_access(app, principal, &row.org_id, "App.analytics", "service").await?;
    }
    // Day buckets: a period is read from the start of its first day.
    let day = crate::usage::meter::DAY_MS;
    let (day_start, day_end) = (start.div_euclid(day) * day, end);
    let app_id = row.id.clone();
    let sqlite_sql = CALLS_SQL.replace("$1", "?").replace("$2", "?").replace("$3", "?");
    let (log, calls, new_reviews): (Vec<String>, Calls, i64) = with_conn!(app.db, c => {
        let log: Vec<String> = app_install_log::table
            .filter(app_install_log::app_id.eq(&app_id))
            .filter(app_install_log::at.ge(start))
            .filter(app_install_log::at.lt(end))
            .select(app_install_log::kind)
            .load(c).await?;
        let sql = if app.db.is_postgres() { CALLS_SQL.to_string() } else { sqlite_sql.clone() };
        let calls: Calls = diesel::sql_query(sql)
            .bind::<Text, _>(app_id.as_str())
            .bind::<BigInt, _>(day_start)
            .bind::<BigInt, _>(day_end)
            .get_result(c).await?;
        let new_reviews: i64 = app_reviews::table
            .filter(app_reviews::app_id.eq(&app_id))
            .filter(app_reviews::created_at.ge(start))
            .filter(app_reviews::created_at.lt(end))
            .count()
            .get_result(c).await?;
        (log, calls, new_reviews)
    });
    Ok(AppStats {
        installs: log.iter().filter(|k| *k == "install").count() as i64,
        uninstalls: log.iter().filter(|k| *k == "uninstall").count() as i64,
        active_installations: row.install_count,
        api_calls: calls.calls,
        api_errors: calls.errors,
        rating: row.rating(),
        review_count: row.rating_count,
        new_reviews,
    })
}
