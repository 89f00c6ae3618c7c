//! Platform analytics for administrators: users, organizations by plan, API calls, webhook
//! deliveries and revenue over a period — counts in SQL over the tables that hold them (API calls
//! from the daily roll-ups, so the answer costs the same however busy the platform was).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;

use crate::app::App;
use crate::auth::Principal;
use crate::error::Result;
use crate::platform::db::schema::{organizations, users};
use crate::with_conn;

pub struct PlanCount {
    pub plan_id: String,
    pub plan_name: String,
    pub organizations: i64,
}

pub struct Revenue {
    /// `YYYY-MM` (UTC) of the payments.
    pub period: String,
    pub currency: String,
    pub amount_cents: i64,
    pub invoices: i64,
}

pub struct PlatformAnalytics {
    pub users: i64,
    pub new_users: i64,
    pub suspended_users: i64,
    pub organizations: i64,
    pub new_organizations: i64,
    pub suspended_organizations: i64,
    pub organizations_by_plan: Vec<PlanCount>,
    pub api_calls: i64,
    pub api_errors: i64,
    /// Deliveries made in the period by status (`pending`, `succeeded`, `failed`).
    pub webhook_deliveries: Vec<(String, i64)>,
    pub revenue: Vec<Revenue>,
    /// The platform's share of marketplace sales paid in the period (minor units, by currency).
    pub marketplace_platform_share: Vec<(String, i64)>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct ByKey {
    #[diesel(sql_type = Text)]
    k: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct PlanRowCount {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Paid {
    #[diesel(sql_type = BigInt)]
    paid_at: i64,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = BigInt)]
    amount: i64,
}

/// The platform over `[start, end)`.
pub async fn platform(app: &App, principal: &Principal, start: i64, end: i64) -> Result<PlatformAnalytics> {
    super::service::require_admin(principal)?;
    let db = &app.db;
    let calls_sql = db.sql(
        "SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) AS n FROM usage_rollups \
         WHERE granularity = 'day' AND level = 3 AND bucket_start >= ? AND bucket_start < ?",
    );
    let errors_sql = db.sql(
        "SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) AS n FROM usage_rollups \
         WHERE granularity = 'day' AND level = 3 AND status >= 400 AND bucket_start >= ? AND bucket_start < ?",
    );
    let deliveries_sql = db.sql(
        "SELECT status AS k, CAST(COUNT(*) AS BIGINT) AS n FROM webhook_deliveries \
         WHERE created_at >= ? AND created_at < ? GROUP BY status ORDER BY status",
    );
    let plans_sql = "SELECT p.id AS id, p.name AS name, CAST(COUNT(o.id) AS BIGINT) AS n FROM plans p \
         LEFT JOIN organizations o ON o.deleted_at IS NULL AND (o.plan_id = p.id OR (o.plan_id IS NULL AND p.is_default)) \
         GROUP BY p.id, p.name ORDER BY p.id";
    let paid_sql = db.sql(
        "SELECT paid_at, currency, amount_paid_cents AS amount FROM invoices \
         WHERE status = 'paid' AND paid_at >= ? AND paid_at < ? AND amount_paid_cents > 0 ORDER BY paid_at",
    );
    let share_sql = db.sql(
        "SELECT e.currency AS k, CAST(SUM(e.platform_cents) AS BIGINT) AS n FROM app_earnings e \
         WHERE e.created_at >= ? AND e.created_at < ? GROUP BY e.currency ORDER BY e.currency",
    );
    let out = with_conn!(db, c => {
        let users_total: i64 = users::table.filter(users::deleted_at.is_null()).count().get_result(c).await?;
        let new_users: i64 = users::table.filter(users::created_at.ge(start)).filter(users::created_at.lt(end)).count().get_result(c).await?;
        let suspended_users: i64 = users::table.filter(users::suspended_at.is_not_null()).filter(users::deleted_at.is_null()).count().get_result(c).await?;
        let orgs: i64 = organizations::table.filter(organizations::deleted_at.is_null()).count().get_result(c).await?;
        let new_orgs: i64 = organizations::table.filter(organizations::created_at.ge(start)).filter(organizations::created_at.lt(end)).count().get_result(c).await?;
        let suspended_orgs: i64 = organizations::table.filter(organizations::suspended_at.is_not_null()).filter(organizations::deleted_at.is_null()).count().get_result(c).await?;
        let by_plan: Vec<PlanRowCount> = diesel::sql_query(plans_sql).load(c).await?;
        let calls: Count = diesel::sql_query(calls_sql.as_str()).bind::<BigInt, _>(start).bind::<BigInt, _>(end).get_result(c).await?;
        let errors: Count = diesel::sql_query(errors_sql.as_str()).bind::<BigInt, _>(start).bind::<BigInt, _>(end).get_result(c).await?;
        let deliveries: Vec<ByKey> = diesel::sql_query(deliveries_sql.as_str()).bind::<BigInt, _>(start).bind::<BigInt, _>(end).load(c).await?;
        let paid: Vec<Paid> = diesel::sql_query(paid_sql.as_str()).bind::<BigInt, _>(start).bind::<BigInt, _>(end).load(c).await?;
        let share: Vec<ByKey> = diesel::sql_query(share_sql.as_str()).bind::<BigInt, _>(start).bind::<BigInt, _>(end).load(c).await?;
        (users_total, new_users, suspended_users, orgs, new_orgs, suspended_orgs, by_plan, calls.n, errors.n, deliveries, paid, share)
    });
    let (
        users_total,
        new_users,
        suspended_users,
        orgs,
        new_orgs,
        suspended_orgs,
        by_plan,
        calls,
        errors,
        deliveries,
        paid,
        share,
    ) = out;
    // Revenue by UTC month of payment and currency.
    let mut revenue: Vec<Revenue> = Vec::new();
    for p in paid {
        let period = crate::platform::clock::month_of(p.paid_at);
        match revenue.iter_mut().find(|r| r.period == period && r.currency == p.currency) {
            Some(r) => {
                r.amount_cents += p.amount;
                r.invoices += 1;
            }
            None => revenue.push(Revenue { period, currency: p.currency, amount_cents: p.amount, invoices: 1 }),
        }
    }
    Ok(PlatformAnalytics {
        users: users_total,
        new_users,
        suspended_users,
        organizations: orgs,
        new_organizations: new_orgs,
        suspended_organizations: suspended_orgs,
        organizations_by_plan: by_plan
            .into_iter()
            .map(|p| PlanCount { plan_id: p.id, plan_name: p.name, organizations: p.n })
            .collect(),
        api_calls: calls,
        api_errors: errors,
        webhook_deliveries: deliveries.into_iter().map(|d| (d.k, d.n)).collect(),
        revenue,
        marketplace_platform_share: share.into_iter().map(|s| (s.k, s.n)).collect(),
    })
}
