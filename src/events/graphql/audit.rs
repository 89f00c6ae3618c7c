//! GraphQL for the audit log: `auditLog` and the `AuditEntry` type.

use async_graphql::{Context, ID, Json, Object};

use crate::graphql::context::{ContextExt, Scope};
use crate::graphql::scalars::DateTime;

/// One security-relevant action in an organization.
pub struct AuditEntry(pub crate::events::AuditRow);

/// One security-relevant action in an organization.
#[Object]
impl AuditEntry {
    /// Entry id (`aud_…`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// What was done, e.g. `key.revoked`.
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// `user` or `api_key`.
    async fn actor_type(&self) -> &str {
        &self.0.actor_type
    }
    /// Id of the user or key that did it.
    async fn actor_id(&self) -> ID {
        ID(self.0.actor_id.clone())
    }
    /// Kind of object acted on, e.g. `api_key`.
    async fn target_type(&self) -> &str {
        &self.0.target_type
    }
    /// Id of the object acted on.
    async fn target_id(&self) -> ID {
        ID(self.0.target_id.clone())
    }
    /// The caller's IP address.
    async fn ip(&self) -> Option<&str> {
        self.0.ip.as_deref()
    }
    /// Details of the action.
    async fn data(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.data).unwrap_or(serde_json::Value::Null))
    }
    /// When it happened.
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The organization's audit log, newest first.
    #[graphql(
        guard = "Scope(\"org:read\")",
        complexity = "crate::graphql::page_complexity(first, last, child_complexity)"
    )]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start, 1–100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1–100.")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
        #[graphql(desc = "Only this action, e.g. `key.rolled`.")] action: Option<String>,
    ) -> async_graphql::Result<crate::graphql::connection::Conn<AuditEntry>> {
        let page = crate::pagination::PageRequest::from_args(first, after, last, before)?;
        let rows = crate::events::list_audit(ctx.app(), ctx.principal()?, action.as_deref(), &page).await?;
        Ok(crate::graphql::connection::connection(rows, |r| r.id.to_string(), AuditEntry))
    }
}
