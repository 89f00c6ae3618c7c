//! The audit log: one entry per security-relevant action (who, from where, on what), written in
//! the same transaction as the action ([`audit!`](crate::audit), or with its event through
//! [`outbox!`](crate::outbox)), and read per organization.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::app::App;
use crate::auth::Principal;
use crate::platform::db::schema::audit_log;
use crate::platform::ids::{AuditId, OrgId};

/// Inside `transaction!`: writes `$audit`, a [`NewAudit`], to the audit log on `$c`.
#[macro_export]
macro_rules! audit {
    ($c:expr, $audit:expr) => {{
        let entry: $crate::events::NewAudit = $audit;
        diesel_async::RunQueryDsl::execute(
            diesel::insert_into($crate::platform::db::schema::audit_log::table).values(entry),
            $c,
        )
        .await?;
    }};
}

/// One audit-log entry: built with [`NewAudit::by`] or [`NewAudit::raw`] and written by
/// [`audit!`](crate::audit); the same struct is what [`list_audit`] reads back.
#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct NewAudit {
    pub id: AuditId,
    pub org_id: OrgId,
    pub actor_type: String,
    pub actor_id: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub ip: Option<String>,
    pub data: String,
    pub created_at: i64,
}

impl NewAudit {
    /// An audit entry for an action a principal took on a target.
    pub fn by(
        app: &App,
        principal: &Principal,
        action: &str,
        target_type: &str,
        target_id: &str,
        data: serde_json::Value,
    ) -> Self {
        Self::raw(
            app,
            &principal.org_id,
            principal.actor_type(),
            &principal.actor_id(),
            principal.ip,
            action,
            target_type,
            target_id,
            data,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub fn raw(
        app: &App,
        org_id: &OrgId,
        actor_type: &str,
        actor_id: &str,
        ip: Option<std::net::IpAddr>,
        action: &str,
        target_type: &str,
        target_id: &str,
        data: serde_json::Value,
    ) -> Self {
        let now = app.clock.now_ms();
        Self {
            id: AuditId::generate(now),
            org_id: org_id.clone(),
            actor_type: actor_type.into(),
            actor_id: actor_id.into(),
            action: action.into(),
            target_type: target_type.into(),
            target_id: target_id.into(),
            ip: ip.map(|i| i.to_string()),
            data: data.to_string(),
            created_at: now,
        }
    }
}

/// An entry read back from the audit log.
pub type AuditRow = NewAudit;

/// The organization's audit trail, newest first (`org:read`).
pub async fn list_audit(
    app: &App,
    principal: &Principal,
    action: Option<&str>,
    page: &crate::pagination::PageRequest,
) -> crate::error::Result<crate::pagination::Page<AuditRow>> {
    principal.require_scope("org:read")?;
    let org = principal.org_id.as_str();
    macro_rules! base {
        () => {{
            let mut q = audit_log::table.filter(audit_log::org_id.eq(org)).into_boxed();
            if let Some(a) = action {
                q = q.filter(audit_log::action.eq(a));
            }
            q
        }};
    }
    let (rows, total) = crate::with_conn!(app.db, c => crate::keyset_page!(c, base!(), audit_log::id, AuditRow, page));
    Ok(crate::pagination::Page::from_rows(rows, page, total))
}
