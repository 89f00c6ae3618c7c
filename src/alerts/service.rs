//! Reading and acknowledging an organization's alerts.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::model::AlertRow;
use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::pagination::{Page, PageRequest};
use crate::platform::db::schema::alerts;
use crate::platform::ids::AlertId;
use crate::{find_in_org, keyset_page, transaction, with_conn};

/// Lists an organization's alerts, newest first, optionally by status.
pub async fn list(app: &App, principal: &Principal, statuses: &[&str], page: &PageRequest) -> Result<Page<AlertRow>> {
    principal.require_scope("usage:read")?;
    let org = principal.org_id.as_str();
    let open = statuses.contains(&"OPEN");
    let acked = statuses.contains(&"ACKNOWLEDGED");
    let resolved = statuses.contains(&"RESOLVED");
    macro_rules! base {
        () => {{
            let mut q = alerts::table.filter(alerts::org_id.eq(org)).into_boxed();
            if !statuses.is_empty() {
                let mut cond: Box<dyn BoxableExpression<alerts::table, _, SqlType = diesel::sql_types::Bool>> =
                    Box::new(diesel::dsl::sql::<diesel::sql_types::Bool>("1 = 0"));
                if open {
                    cond = Box::new(cond.or(alerts::resolved_at.is_null().and(alerts::acknowledged_at.is_null())));
                }
                if acked {
                    cond = Box::new(cond.or(alerts::resolved_at.is_null().and(alerts::acknowledged_at.is_not_null())));
                }
                if resolved {
                    cond = Box::new(cond.or(alerts::resolved_at.is_not_null()));
                }
                q = q.filter(cond);
            }
            q
        }};
    }
    let (rows, total) = with_conn!(app.db, c => keyset_page!(c, base!(), alerts::id, AlertRow, page));
    Ok(Page::from_rows(rows, page, total))
}

/// One alert of the caller's organization.
pub async fn get(app: &App, principal: &Principal, id: &str) -> Result<AlertRow> {
    principal.require_scope("usage:read")?;
    find_in_org!(app.db, principal.org_id.as_str(), alerts, AlertRow, AlertId, id, "alert")
}

/// Acknowledges an active alert of the caller's organization (idempotent).
pub async fn acknowledge(app: &App, principal: &Principal, id: &str) -> Result<AlertRow> {
    principal.require_scope("usage:write")?;
    let id: AlertId = id.parse().map_err(|_| Error::NotFound("alert"))?;
    let now = app.clock.now_ms();
    let actor = principal.actor_id();
    transaction!(app.db, c => {
        let row: AlertRow = alerts::table
            .find(id.as_str())
            .filter(alerts::org_id.eq(principal.org_id.as_str()))
            .select(AlertRow::as_select())
            .first(c).await.optional()?
            .ok_or(Error::NotFound("alert"))?;
        if row.acknowledged_at.is_some() || row.resolved_at.is_some() {
            return Ok(row);
        }
        diesel::update(alerts::table.find(id.as_str()))
            .set((alerts::acknowledged_at.eq(now), alerts::acknowledged_by.eq(&actor)))
            .execute(c).await?;
        Ok::<_, Error>(AlertRow { acknowledged_at: Some(now), acknowledged_by: Some(actor.clone()), ..row })
    })
}
