//! Usage-based lines beyond the request overage: billable metrics over the events the operator's
//! backend reports with `recordUsage` (count, sum, max, unique count — per billing month), priced
//! per plan by the tier models, and the lines of paid marketplace apps (a FIXED monthly price
//! prorated to the second of installation, or USAGE_BASED per call made with the app's tokens).

use std::collections::{BTreeMap, HashSet};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::invoices::{Draft, LineKind};
use super::model::{ChargeRow, MetricRow};
use super::money::{self, MICROS_PER_CENT, Tier, TierModel};
use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::limits::model::PlanRow;
use crate::platform::db::schema::{app_install_log, apps, billable_metrics, metered_events, plan_charges, plans};
use crate::platform::ids::{MetricId, OrgId};
use crate::with_conn;

pub const AGGREGATIONS: [&str; 4] = ["count", "sum", "max", "unique_count"];

fn require_admin(principal: &Principal) -> Result<()> {
    if principal.is_platform_admin() {
        Ok(())
    } else {
        Err(Error::forbidden("only a platform administrator may define billable metrics and their prices"))
    }
}

/// A metric to define.
pub struct NewMetric {
    pub code: String,
    pub name: String,
    pub description: String,
    pub aggregation: String,
    pub field_name: Option<String>,
}

fn valid_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

fn valid_field(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Defines a billable metric (platform administrators). Its `code` is the `metric` of the events
/// it aggregates.
pub async fn create_metric(app: &App, principal: &Principal, m: NewMetric) -> Result<MetricRow> {
    require_admin(principal)?;
    if !valid_code(&m.code) {
        return Err(Error::bad_input("code", "1 to 64 characters of a-z, 0-9, '_', '.', ':' and '-'"));
    }
    if m.name.trim().is_empty() || m.name.chars().count() > 100 {
        return Err(Error::bad_input("name", "must be 1 to 100 characters"));
    }
    if m.description.chars().count() > 1000 {
        return Err(Error::bad_input("description", "must be at most 1,000 characters"));
    }
    if m.field_name.as_deref().is_some_and(|f| !valid_field(f)) {
        return Err(Error::bad_input("fieldName", "1 to 64 characters of letters, digits and '_'"));
    }
    if m.aggregation == "unique_count" && m.field_name.is_none() {
        return Err(Error::bad_input("fieldName", "UNIQUE_COUNT counts distinct values of a property: name it"));
    }
    if m.aggregation == "count" && m.field_name.is_some() {
        return Err(Error::bad_input("fieldName", "COUNT counts events: it takes no property"));
    }
    let now = app.clock.now_ms();
    let row = MetricRow {
        id: MetricId::generate(now).to_string(),
        code: m.code,
        name: m.name.trim().to_string(),
        description: m.description,
        aggregation: m.aggregation,
        field_name: m.field_name,
        created_at: now,
        updated_at: now,
    };
    with_conn!(app.db, c => {
        let taken: i64 = billable_metrics::table.filter(billable_metrics::code.eq(&row.code)).count().get_result(c).await?;
        if taken > 0 {
            return Err(Error::Conflict(format!("a billable metric with code '{}' exists", row.code)));
        }
        diesel::insert_into(billable_metrics::table).values(&row).execute(c).await?;
        Ok::<_, Error>(())
    })?;
    Ok(row)
}

/// Removes a metric and its prices on every plan (platform administrators): months not closed
/// yet no longer bill it.
pub async fn delete_metric(app: &App, principal: &Principal, id: &str) -> Result<()> {
    require_admin(principal)?;
    let n = with_conn!(app.db, c => {
        diesel::delete(plan_charges::table.filter(plan_charges::metric_id.eq(id))).execute(c).await?;
        diesel::delete(billable_metrics::table.find(id)).execute(c).await?
    });
    if n == 0 { Err(Error::NotFound("billable metric")) } else { Ok(()) }
}

pub async fn list_metrics(app: &App) -> Result<Vec<MetricRow>> {
    Ok(with_conn!(app.db, c => {
        billable_metrics::table.order(billable_metrics::code.asc()).select(MetricRow::as_select()).load(c).await?
    }))
}

pub async fn get_metric(app: &App, id: &str) -> Result<MetricRow> {
    with_conn!(app.db, c => billable_metrics::table.find(id).select(MetricRow::as_select()).first(c).await.optional()?)
        .ok_or(Error::NotFound("billable metric"))
}

/// How a plan prices a metric.
pub struct ChargeInput {
    pub model: TierModel,
    pub tiers: Vec<Tier>,
    pub package_size: i64,
    pub free_units: i64,
}

fn model_str(m: TierModel) -> &'static str {
    match m {
        TierModel::Graduated => "graduated",
        TierModel::Volume => "volume",
        TierModel::Package => "package",
    }
}

pub fn parse_model(s: &str) -> TierModel {
    match s {
        "volume" => TierModel::Volume,
        "package" => TierModel::Package,
        _ => TierModel::Graduated,
    }
}

/// Prices a metric on a plan, replacing its price there (platform administrators). Applies to
/// every month not closed yet.
pub async fn set_charge(
    app: &App,
    principal: &Principal,
    plan_id: &str,
    metric_id: &str,
    input: ChargeInput,
) -> Result<ChargeRow> {
    require_admin(principal)?;
    if input.tiers.is_empty() {
        return Err(Error::bad_input("tiers", "at least one tier"));
    }
    money::validate_tiers(&input.tiers).map_err(|m| Error::bad_input("tiers", m))?;
    if input.package_size < 1 {
        return Err(Error::bad_input("packageSize", "must be at least 1"));
    }
    if input.free_units < 0 {
        return Err(Error::bad_input("freeUnits", "must not be negative"));
    }
    let now = app.clock.now_ms();
    let row = ChargeRow {
        plan_id: plan_id.to_string(),
        metric_id: metric_id.to_string(),
        model: model_str(input.model).into(),
        tiers: serde_json::to_string(&input.tiers).unwrap_or_else(|_| "[]".into()),
        package_size: input.package_size,
        free_units: input.free_units,
        created_at: now,
        updated_at: now,
    };
    with_conn!(app.db, c => {
        let plan: i64 = plans::table.find(plan_id).count().get_result(c).await?;
        if plan == 0 {
            return Err(Error::NotFound("plan"));
        }
        let metric: i64 = billable_metrics::table.find(metric_id).count().get_result(c).await?;
        if metric == 0 {
            return Err(Error::bad_input("metricId", "no such billable metric"));
        }
        diesel::delete(plan_charges::table.find((plan_id, metric_id))).execute(c).await?;
        diesel::insert_into(plan_charges::table).values(&row).execute(c).await?;
        Ok::<_, Error>(())
    })?;
    Ok(row)
}

/// Stops charging a metric on a plan (platform administrators).
pub async fn remove_charge(app: &App, principal: &Principal, plan_id: &str, metric_id: &str) -> Result<()> {
    require_admin(principal)?;
    let n = with_conn!(app.db, c => diesel::delete(plan_charges::table.find((plan_id, metric_id))).execute(c).await?);
    if n == 0 { Err(Error::NotFound("plan charge")) } else { Ok(()) }
}

/// Every plan's metric prices.
pub async fn all_charges(app: &App) -> Result<Vec<ChargeRow>> {
    Ok(with_conn!(app.db, c => {
        plan_charges::table.order((plan_charges::plan_id.asc(), plan_charges::metric_id.asc())).select(ChargeRow::as_select()).load(c).await?
    }))
}

/// A number in a JSON property: integers exactly, decimals rounded half up; anything else is no
/// number (skipped by SUM and MAX).
fn number(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.round() as i64)),
        serde_json::Value::String(s) => s.parse::<i64>().ok(),
        _ => None,
    }
}

/// A metric's value for an organization over `[from, to)` of event time.
pub async fn aggregate(app: &App, metric: &MetricRow, org: &OrgId, from: i64, to: i64) -> Result<i64> {
    macro_rules! events {
        () => {
            metered_events::table
                .filter(metered_events::org_id.eq(org))
                .filter(metered_events::metric.eq(&metric.code))
                .filter(metered_events::occurred_at.ge(from))
                .filter(metered_events::occurred_at.lt(to))
        };
    }
    let Some(field) = metric.field_name.as_deref() else {
        return Ok(with_conn!(app.db, c => {
            match metric.aggregation.as_str() {
                "count" => events!().count().get_result::<i64>(c).await?,
                "max" => events!().select(diesel::dsl::max(metered_events::quantity)).first::<Option<i64>>(c).await?.unwrap_or(0),
                _ => events!().select(metered_events::quantity).load::<i64>(c).await?.iter().sum(),
            }
        }));
    };
    // A property: read page by page (event ids are time-ordered) and aggregate here, the same way
    // on both backends; a value that is not a number does not count towards SUM or MAX.
    let (mut sum, mut max, mut seen) = (0i64, 0i64, HashSet::new());
    let mut after = String::new();
    loop {
        let page: Vec<(String, String)> = with_conn!(app.db, c => {
            events!().filter(metered_events::id.gt(&after)).order(metered_events::id.asc())
                .select((metered_events::id, metered_events::properties)).limit(5000).load(c).await?
        });
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        for (_, props) in &page {
            let props: serde_json::Value = serde_json::from_str(props).unwrap_or_default();
            let Some(v) = props.get(field).filter(|v| !v.is_null()) else { continue };
            if metric.aggregation == "unique_count" {
                seen.insert(v.to_string());
            } else if let Some(n) = number(v) {
                sum = sum.saturating_add(n);
                max = max.max(n);
            }
        }
    }
    Ok(match metric.aggregation.as_str() {
        "unique_count" => seen.len() as i64,
        "max" => max,
        _ => sum,
    })
}

/// The lines of `value` units of a metric priced by `charge`.
pub fn metric_lines(
    metric: &MetricRow,
    charge: &ChargeRow,
    plan: &PlanRow,
    value: i64,
    period: (i64, i64),
) -> Vec<Draft> {
    let tiers: Vec<Tier> = serde_json::from_str(&charge.tiers).unwrap_or_default();
    let model = parse_model(&charge.model);
    money::price(model, &tiers, charge.package_size, charge.free_units, value)
        .into_iter()
        .map(|s| {
            let what = match model {
                TierModel::Package => format!("{} packages of {}", s.quantity, charge.package_size),
                _ => match s.to {
                    Some(to) if model == TierModel::Graduated => format!("{}–{}", s.from + 1, to),
                    _ if model == TierModel::Volume => format!("{} units at the volume price", s.quantity),
                    _ => format!("above {}", s.from),
                },
            };
            Draft {
                kind: LineKind::Metered,
                description: format!("{} {what} ({} plan, {} included)", metric.name, plan.name, charge.free_units),
                period,
                quantity: s.quantity,
                unit_price_micros: s.unit_price_micros,
                amount_cents: s.amount_cents,
                plan_id: Some(plan.id.clone()),
                app_id: None,
            }
        })
        .collect()
}

/// A paid app's use by one organization in a month.
#[derive(Debug, Clone)]
pub struct AppUse {
    pub app_id: String,
    pub name: String,
    pub pricing_model: String,
    pub price_amount: i64,
    pub currency: String,
    /// Milliseconds of the month the app was installed.
    pub installed_ms: i64,
    /// Calls made with the app's tokens in the organization.
    pub calls: i64,
    /// Installed at the end of the range.
    pub installed_at_end: bool,
}

#[derive(diesel::QueryableByName)]
struct Calls {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    calls: i64,
}

const APP_CALLS_SQL: &str = "SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT) AS calls FROM usage_rollups \
     WHERE granularity = 'day' AND level = 1 AND org_id = ? AND api_key_id = ? AND bucket_start >= ? AND bucket_start < ?";

/// The paid apps an organization had installed during `[from, to)`: how long, and how many
/// calls they made (from the install log and the usage roll-ups).
pub async fn app_usage(app: &App, org: &OrgId, from: i64, to: i64) -> Result<Vec<AppUse>> {
    let log: Vec<(String, String, i64)> = with_conn!(app.db, c => {
        app_install_log::table
            .filter(app_install_log::org_id.eq(org))
            .filter(app_install_log::at.lt(to))
            .order(app_install_log::at.asc())
            .select((app_install_log::app_id, app_install_log::kind, app_install_log::at))
            .load(c).await?
    });
    if log.is_empty() {
        return Ok(Vec::new());
    }
    // Per app: the time installed within the month, walking its installs and uninstalls.
    let mut installed: BTreeMap<String, (Option<i64>, i64)> = BTreeMap::new();
    for (id, kind, at) in log {
        let e = installed.entry(id).or_insert((None, 0));
        match (kind.as_str(), e.0) {
            ("install", None) => e.0 = Some(at.max(from)),
            ("uninstall", Some(since)) => {
                e.1 += (at.max(from) - since).max(0);
                e.0 = None;
            }
            _ => {}
        }
    }
    let ids: Vec<String> = installed.keys().cloned().collect();
    let rows: Vec<(String, String, String, Option<i64>, String)> = with_conn!(app.db, c => {
        apps::table.filter(apps::id.eq_any(&ids)).filter(apps::pricing_model.eq_any(["fixed", "usage_based"]))
            .select((apps::id, apps::name, apps::pricing_model, apps::price_amount, apps::price_currency)).load(c).await?
    });
    let sql = app.db.sql(APP_CALLS_SQL);
    let mut out = Vec::new();
    for (id, name, model, price, currency) in rows {
        let Some((since, ms)) = installed.get(&id).copied() else { continue };
        let installed_ms = ms + since.map_or(0, |s| (to - s).max(0));
        let calls = if model == "usage_based" {
            with_conn!(app.db, c => {
                diesel::sql_query(sql.as_str())
                    .bind::<diesel::sql_types::Text, _>(org.as_str())
                    .bind::<diesel::sql_types::Text, _>(id.as_str())
                    .bind::<diesel::sql_types::BigInt, _>(from)
                    .bind::<diesel::sql_types::BigInt, _>(to)
                    .get_result::<Calls>(c).await?.calls
            })
        } else {
            0
        };
        if installed_ms > 0 || calls > 0 {
            out.push(AppUse {
                app_id: id,
                name,
                pricing_model: model,
                price_amount: price.unwrap_or(0),
                currency,
                installed_ms,
                calls,
                installed_at_end: since.is_some(),
            });
        }
    }
    Ok(out)
}

/// The invoice lines of paid apps in a month of `[from, to)` billed in `currency`: a FIXED price
/// for the share of the month installed (to the second, like a plan change), USAGE_BASED per
/// call (the price is per 1,000 calls).
pub fn app_lines(uses: &[AppUse], period: (i64, i64), currency: &str) -> Vec<Draft> {
    uses.iter()
        .filter(|u| u.currency.eq_ignore_ascii_case(currency) && u.price_amount > 0)
        .filter_map(|u| {
            let (kind, quantity, unit, what) = if u.pricing_model == "fixed" {
                let unit = money::prorate_micros(u.price_amount, period.0, period.1, period.1 - u.installed_ms);
                let share = if u.installed_ms >= period.1 - period.0 { "" } else { ", prorated to the time installed" };
                (LineKind::AppFee, 1, unit, format!("monthly price{share}"))
            } else {
                (LineKind::AppUsage, u.calls, u.price_amount * MICROS_PER_CENT / 1000, "API calls".to_string())
            };
            let amount = money::line_amount(quantity, unit);
            (amount > 0).then(|| Draft {
                kind,
                description: format!("{} (marketplace app): {what}", u.name),
                period,
                quantity,
                unit_price_micros: unit,
                amount_cents: amount,
                plan_id: None,
                app_id: Some(u.app_id.clone()),
            })
        })
        .collect()
}

/// What an organization used in a month beyond API requests: each charged metric's value and
/// its paid apps.
#[derive(Debug, Clone, Default)]
pub struct MonthUsage {
    pub metrics: Vec<(MetricRow, i64)>,
    pub apps: Vec<AppUse>,
}

/// Reads an organization's month of `[from, to)`: every metric some plan charges, and its apps.
pub async fn month_usage(
    app: &App,
    org: &OrgId,
    from: i64,
    to: i64,
    metrics: &[MetricRow],
    charges: &[ChargeRow],
) -> Result<MonthUsage> {
    let mut out = MonthUsage::default();
    for m in metrics.iter().filter(|m| charges.iter().any(|c| c.metric_id == m.id)) {
        out.metrics.push((m.clone(), aggregate(app, m, org, from, to).await?));
    }
    out.apps = app_usage(app, org, from, to).await?;
    Ok(out)
}

/// The metric and app lines of a month on `plan`.
pub fn usage_lines(plan: &PlanRow, charges: &[ChargeRow], usage: &MonthUsage, period: (i64, i64)) -> Vec<Draft> {
    let mut lines = Vec::new();
    for (metric, value) in &usage.metrics {
        if let Some(charge) = charges.iter().find(|c| c.plan_id == plan.id && c.metric_id == metric.id) {
            lines.extend(metric_lines(metric, charge, plan, *value, period));
        }
    }
    lines.extend(app_lines(&usage.apps, period, &plan.currency));
    lines
}
