//! GraphQL for organization exports.

use async_graphql::{Context, Enum, ID, Object};

use super::service::{self, ExportRow};
use crate::graphql::context::{ContextExt, Scope};
use crate::graphql::scalars::DateTime;

/// Where an export stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ExportStatus {
    /// Waiting for a node to start it.
    Pending,
    /// Being written.
    Running,
    /// Ready: `downloadUrl` works until `expiresAt`.
    Ready,
    /// It could not be produced (`error` says why); ask again.
    Failed,
    /// Its link expired and its document was deleted.
    Expired,
}

/// An export of the organization's data: a JSON document of its members, keys' metadata (never
/// secrets), apps, installations, webhook endpoints, event types, subscription, invoices, usage
/// roll-ups and audit log.
pub struct OrganizationExport(pub ExportRow);

/// An export of the organization's data.
#[Object]
impl OrganizationExport {
    /// Export id (`exp_…`).
    async fn id(&self) -> ID {
        self.0.id.clone().into()
    }
    /// Where it stands.
    async fn status(&self) -> ExportStatus {
        match self.0.status.as_str() {
            "pending" => ExportStatus::Pending,
            "running" => ExportStatus::Running,
            "ready" => ExportStatus::Ready,
            "failed" => ExportStatus::Failed,
            _ => ExportStatus::Expired,
        }
    }
    /// When it was asked for.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When it was finished.
    async fn finished_at(&self) -> Option<DateTime> {
        self.0.finished_at.map(Into::into)
    }
    /// The document's size in bytes (when ready).
    async fn bytes(&self) -> i64 {
        self.0.bytes
    }
    /// Where to download it (no credential needed: the link is signed), while it is ready.
    async fn download_url(&self, ctx: &Context<'_>) -> Option<String> {
        service::download_url(ctx.app(), &self.0)
    }
    /// When the link stops working and the document is deleted.
    async fn expires_at(&self) -> Option<DateTime> {
        self.0.expires_at.map(Into::into)
    }
    /// Why it failed.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
}

#[derive(Default)]
pub struct ExportsQuery;

#[Object]
impl ExportsQuery {
    /// One export of the organization (OWNER and ADMIN).
    #[graphql(guard = "Scope(\"org:write\")")]
    async fn organization_export(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Export id (`exp_…`).")] id: ID,
    ) -> async_graphql::Result<OrganizationExport> {
        Ok(OrganizationExport(service::get(ctx.app(), ctx.principal()?, &id).await?))
    }

    /// The organization's last 20 exports, newest first (OWNER and ADMIN).
    #[graphql(guard = "Scope(\"org:write\")")]
    async fn organization_exports(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<OrganizationExport>> {
        Ok(service::list(ctx.app(), ctx.principal()?).await?.into_iter().map(OrganizationExport).collect())
    }
}

#[derive(Default)]
pub struct ExportsMutation;

#[Object]
impl ExportsMutation {
    /// Exports everything the organization owns as one JSON document, in the background: poll
    /// `organizationExport(id)` (or wait for the `org.export_ready` event) for its `downloadUrl`.
    /// An export already waiting or running is returned instead of a second one (OWNER and ADMIN).
    #[graphql(guard = "Scope(\"org:write\")")]
    async fn export_organization(&self, ctx: &Context<'_>) -> async_graphql::Result<OrganizationExport> {
        let app = ctx.app();
        let row = service::request(app, ctx.principal()?).await?;
        tokio::spawn(service::run(app.clone()));
        Ok(OrganizationExport(row))
    }
}
