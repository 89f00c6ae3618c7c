//! The marketplace revenue share: when an invoice with app lines is paid, each app's amount is
//! split — [`DEVELOPER_PERCENT`] to the app owner's organization, the rest to the platform — in
//! the transaction that marks it paid, once per invoice and app.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::model::EarningRow;
use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::platform::db::schema::{app_earnings, apps};
use crate::with_conn;

/// The app owner's share of what its installing organizations pay for it.
pub const DEVELOPER_PERCENT: i64 = 70;

/// `gross` split into the developer's and the platform's share (the developer's rounded half up;
/// the two always add up to `gross`).
pub fn split(gross: i64) -> (i64, i64) {
    let dev = super::money::div_round(gross as i128 * DEVELOPER_PERCENT as i128, 100) as i64;
    (dev, gross - dev)
}

/// Inside the transaction that marks the invoice `$inv` (an `InvoiceRow`) paid: records the share
/// of each of its app lines.
#[macro_export]
macro_rules! record_earnings {
    ($c:expr, $inv:expr, $now:expr) => {{
        use $crate::platform::db::schema::{app_earnings, apps, invoice_lines};
        let inv: &$crate::billing::model::InvoiceRow = $inv;
        let lines: Vec<(Option<String>, i64)> = diesel_async::RunQueryDsl::load(
            diesel::QueryDsl::select(
                diesel::QueryDsl::filter(
                    invoice_lines::table,
                    diesel::ExpressionMethods::eq(invoice_lines::invoice_id, &inv.id),
                ),
                (invoice_lines::app_id, invoice_lines::amount_cents),
            ),
            $c,
        )
        .await?;
        let mut by_app: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
        for (app_id, amount) in lines {
            if let Some(a) = app_id {
                *by_app.entry(a).or_default() += amount;
            }
        }
        for (app_id, gross) in by_app.into_iter().filter(|(_, g)| *g > 0) {
            let owner: Option<String> = diesel::OptionalExtension::optional(
                diesel_async::RunQueryDsl::get_result(
                    diesel::QueryDsl::select(diesel::QueryDsl::find(apps::table, &app_id), apps::org_id),
                    $c,
                )
                .await,
            )?;
            let (dev, platform) = $crate::billing::earnings::split(gross);
            diesel_async::RunQueryDsl::execute(
                diesel::insert_into(app_earnings::table)
                    .values($crate::billing::model::EarningRow {
                        invoice_id: inv.id.clone(),
                        app_id,
                        developer_org_id: owner.unwrap_or_default(),
                        org_id: inv.org_id.to_string(),
                        gross_cents: gross,
                        developer_cents: dev,
                        platform_cents: platform,
                        currency: inv.currency.clone(),
                        created_at: $now,
                    })
                    .on_conflict_do_nothing(),
                $c,
            )
            .await?;
        }
    }};
}

/// Totals of a set of earnings.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub gross_cents: i64,
    pub developer_cents: i64,
    pub platform_cents: i64,
    pub invoices: i64,
}

fn totals(rows: &[EarningRow]) -> Totals {
    let mut t = Totals::default();
    for r in rows {
        t.gross_cents += r.gross_cents;
        t.developer_cents += r.developer_cents;
        t.platform_cents += r.platform_cents;
    }
    t.invoices = rows.len() as i64;
    t
}

/// An app's earnings paid in `[from, to)`, for its owner's organization (`apps:read`): totals and
/// the newest 100 entries.
pub async fn for_app(
    app: &App,
    principal: &Principal,
    app_id: &str,
    from: i64,
    to: i64,
) -> Result<(Totals, Vec<EarningRow>)> {
    principal.require_scope("apps:read")?;
    let org = principal.org_id.to_string();
    let owned: i64 = with_conn!(app.db, c => {
        apps::table.filter(apps::id.eq(app_id)).filter(apps::org_id.eq(&org)).count().get_result(c).await?
    });
    if owned == 0 {
        if !principal.is_platform_admin() {
            return Err(Error::NotFound("app"));
        }
        // An administrator reading another organization's earnings: in its audit log.
        let owner: Option<crate::platform::ids::OrgId> = with_conn!(app.db, c => {
            apps::table.filter(apps::id.eq(app_id)).select(apps::org_id).first(c).await.optional()?
        });
        let owner = owner.ok_or(Error::NotFound("app"))?;
        crate::admin::service::record_access(app, principal, &owner, "appEarnings", "service").await?;
    }
    let rows: Vec<EarningRow> = with_conn!(app.db, c => {
        app_earnings::table.filter(app_earnings::app_id.eq(app_id))
            .filter(app_earnings::created_at.ge(from)).filter(app_earnings::created_at.lt(to))
            .order(app_earnings::created_at.desc()).select(EarningRow::as_select()).load(c).await?
    });
    let t = totals(&rows);
    Ok((t, rows.into_iter().take(100).collect()))
}

/// Every app's earnings paid in `[from, to)` (platform administrators): the platform's totals and
/// one total per app.
pub async fn platform(app: &App, principal: &Principal, from: i64, to: i64) -> Result<(Totals, Vec<(String, Totals)>)> {
    if !principal.is_platform_admin() {
        return Err(Error::forbidden("only a platform administrator may read the platform's revenue share"));
    }
    let rows: Vec<EarningRow> = with_conn!(app.db, c => {
        app_earnings::table.filter(app_earnings::created_at.ge(from)).filter(app_earnings::created_at.lt(to))
            .order(app_earnings::app_id.asc()).select(EarningRow::as_select()).load(c).await?
    });
    let mut by_app: Vec<(String, Vec<EarningRow>)> = Vec::new();
    for r in &rows {
        match by_app.last_mut() {
            Some((id, v)) if *id == r.app_id => v.push(r.clone()),
            _ => by_app.push((r.app_id.clone(), vec![r.clone()])),
        }
    }
    Ok((totals(&rows), by_app.into_iter().map(|(id, v)| (id, totals(&v))).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_adds_up_and_rounds_half_up() {
        assert_eq!(split(1000), (700, 300));
        assert_eq!(split(5), (4, 1)); // 3.5 → 4
        assert_eq!(split(1), (1, 0)); // 0.7 → 1
        for g in 0..1000 {
            let (d, p) = split(g);
            assert_eq!(d + p, g);
        }
    }
}
