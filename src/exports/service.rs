//! Organization exports: requested by an OWNER or ADMIN (`org:write`), produced by a background
//! job that any node may run (claimed by a conditional update with a lease renewed as it writes, so
//! a crashed job is taken over and started again), downloadable through a signed link for a day.
//! The hourly sweep expires old exports and deletes their chunks.

use std::sync::Arc;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::document::{self, Writer};
use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::events::{NewAudit, PendingEvent};
use crate::platform::db::schema::{org_export_chunks, org_exports, organizations};
use crate::platform::ids::{ExportId, OrgId};
use crate::{transaction, with_conn};

/// How long a download link works.
pub const LINK_TTL_MS: i64 = 24 * 3_600_000;
/// How long a job's claim lasts without being renewed (it is renewed with every chunk).
const LEASE_MS: i64 = 5 * 60_000;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = org_exports)]
pub struct ExportRow {
    pub id: ExportId,
    pub org_id: OrgId,
    pub requested_by: String,
    /// `pending`, `running`, `ready`, `failed`, `expired`.
    pub status: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub claimed_until: Option<i64>,
    pub bytes: i64,
    pub chunks: i64,
    pub error: Option<String>,
    pub expires_at: Option<i64>,
}

/// Asks for an export of the principal's organization; an export already waiting or running is
/// returned instead of a second one. The caller starts [`run`].
pub async fn request(app: &App, principal: &Principal) -> Result<ExportRow> {
    principal.require_scope("org:write")?;
    let now = app.clock.now_ms();
    let org = principal.org_id.clone();
    let pg = app.db.is_postgres();
    transaction!(app.db, c => {
        crate::lock_row!(c, pg, "organizations", org.as_str());
        let open: Option<ExportRow> = org_exports::table
            .filter(org_exports::org_id.eq(&org))
            .filter(org_exports::status.eq_any(["pending", "running"]))
            .select(ExportRow::as_select())
            .first(c).await.optional()?;
        if let Some(open) = open {
            return Ok(open);
        }
        let row = ExportRow {
            id: ExportId::generate(now),
            org_id: org.clone(),
            requested_by: principal.actor_id(),
            status: "pending".into(),
            created_at: now,
            started_at: None,
            finished_at: None,
            claimed_until: None,
            bytes: 0,
            chunks: 0,
            error: None,
            expires_at: None,
        };
        diesel::insert_into(org_exports::table).values(&row).execute(c).await?;
        crate::audit!(c, NewAudit::by(app, principal, "org.export_requested", "export", row.id.as_str(), serde_json::json!({})));
        Ok::<_, Error>(row)
    })
}

/// One export of the principal's organization.
pub async fn get(app: &App, principal: &Principal, id: &str) -> Result<ExportRow> {
    principal.require_scope("org:write")?;
    crate::find_in_org!(app.db, principal.org_id.as_str(), org_exports, ExportRow, ExportId, id, "export")
}

/// The organization's exports, newest first (the last 20).
pub async fn list(app: &App, principal: &Principal) -> Result<Vec<ExportRow>> {
    principal.require_scope("org:write")?;
    Ok(with_conn!(app.db, c => {
        org_exports::table
            .filter(org_exports::org_id.eq(&principal.org_id))
            .order(org_exports::id.desc())
            .limit(20)
            .select(ExportRow::as_select())
            .load(c).await?
    }))
}

fn link_token(app: &App, id: &ExportId, expires_at: i64) -> String {
    app.secret.keyed_hash("export_link", &format!("{id}:{expires_at}"))
}

/// The download link of a ready, unexpired export.
pub fn download_url(app: &App, row: &ExportRow) -> Option<String> {
    let expires = row.expires_at?;
    (row.status == "ready" && expires > app.clock.now_ms()).then(|| {
        format!("{}/exports/{}/download?token={}", app.public_url(), row.id, link_token(app, &row.id, expires))
    })
}

/// The export a download link names, if the link is genuine and still works.
pub async fn open_download(app: &App, id: &str, token: &str) -> Result<ExportRow> {
    let id: ExportId = id.parse().map_err(|_| Error::NotFound("export"))?;
    let row: Option<ExportRow> = with_conn!(app.db, c => {
        org_exports::table.find(&id).select(ExportRow::as_select()).first(c).await.optional()?
    });
    let row = row.ok_or(Error::NotFound("export"))?;
    let Some(expires) = row.expires_at.filter(|e| *e > app.clock.now_ms() && row.status == "ready") else {
        return Err(Error::NotFound("export"));
    };
    if !crate::platform::crypto::constant_time_eq(link_token(app, &row.id, expires).as_bytes(), token.as_bytes()) {
        return Err(Error::NotFound("export"));
    }
    Ok(row)
}

/// One stored chunk of an export's document.
pub async fn chunk(app: &App, id: &ExportId, seq: i64) -> Result<Option<String>> {
    Ok(with_conn!(app.db, c => {
        org_export_chunks::table.find((id, seq)).select(org_export_chunks::data).first(c).await.optional()?
    }))
}

/// Claims the oldest waiting export (or one whose job stopped renewing its claim).
async fn claim(app: &App) -> Result<Option<ExportRow>> {
    let now = app.clock.now_ms();
    let free =
        org_exports::status.eq("pending").or(org_exports::status.eq("running").and(org_exports::claimed_until.lt(now)));
    Ok(with_conn!(app.db, c => {
        let next: Option<ExportId> = org_exports::table
            .filter(free)
            .order(org_exports::created_at.asc())
            .select(org_exports::id)
            .first(c).await.optional()?;
        match next {
            None => None,
            Some(id) => diesel::update(org_exports::table.find(&id).filter(free))
                .set((
                    org_exports::status.eq("running"),
                    org_exports::claimed_until.eq(now + LEASE_MS),
                    org_exports::started_at.eq(now),
                ))
                .returning(ExportRow::as_returning())
                .get_result(c).await.optional()?,
        }
    }))
}

/// Runs every waiting export on this node, one after another (one job per node at a time).
pub async fn run(app: Arc<App>) {
    use std::sync::atomic::Ordering;
    if app.exports_running.swap(true, Ordering::SeqCst) {
        return;
    }
    loop {
        let job = match claim(&app).await {
            Ok(Some(job)) => job,
            Ok(None) => break,
            Err(e) => {
                e.log();
                break;
            }
        };
        if let Err(e) = produce(&app, &job).await {
            e.log();
            let message = e.public_message();
            let now = app.clock.now_ms();
            let fence = job.started_at.unwrap_or_default();
            let failed: Result<usize> = async {
                Ok(with_conn!(app.db, c => {
                    diesel::update(org_exports::table.find(&job.id).filter(org_exports::started_at.eq(fence)))
                        .set((org_exports::status.eq("failed"), org_exports::error.eq(message), org_exports::finished_at.eq(now)))
                        .execute(c).await?
                }))
            }
            .await;
            if let Err(e) = failed {
                e.log();
            }
        }
    }
    app.exports_running.store(false, Ordering::SeqCst);
}

async fn produce(app: &App, job: &ExportRow) -> Result<()> {
    let fence = job.started_at.unwrap_or_default();
    with_conn!(app.db, c => {
        diesel::delete(org_export_chunks::table.filter(org_export_chunks::export_id.eq(&job.id))).execute(c).await?
    });
    let mut w = Writer::new(app, job.id.clone(), LEASE_MS, fence);
    document::write(app, &mut w, &job.org_id).await?;
    let now = app.clock.now_ms();
    // A deleted organization's export lasts its whole window: nothing else can be had after it.
    let purge_after: Option<i64> = with_conn!(app.db, c => {
        organizations::table.find(&job.org_id).select(organizations::purge_after).first(c).await?
    });
    let expires = (now + LINK_TTL_MS).max(purge_after.unwrap_or(0));
    let (bytes, chunks) = (w.bytes, w.chunks());
    let event = transaction!(app.db, c => {
        let done = diesel::update(org_exports::table.find(&job.id).filter(org_exports::started_at.eq(fence)))
            .set((
                org_exports::status.eq("ready"),
                org_exports::finished_at.eq(now),
                org_exports::bytes.eq(bytes),
                org_exports::chunks.eq(chunks),
                org_exports::expires_at.eq(expires),
                org_exports::claimed_until.eq(None::<i64>),
            ))
            .execute(c).await?;
        if done == 0 {
            return Err(Error::Conflict("another node took this export over".into()));
        }
        let data = serde_json::json!({
            "export": { "id": job.id, "bytes": bytes, "expiresAt": crate::platform::clock::rfc3339(expires) },
        });
        let event = crate::outbox!(c,
            PendingEvent::new(app, &job.org_id, "org.export_ready", data.clone()),
            NewAudit::raw(app, &job.org_id, "system", "export", None, "org.export_ready", "export", job.id.as_str(), data));
        Ok::<_, Error>(event)
    })?;
    event.publish(app).await;
    mail_link(app, job, bytes, expires, purge_after.is_some()).await;
    Ok(())
}

/// Mails the download link to the user who asked for the export (not to an API key or an app).
async fn mail_link(app: &App, job: &ExportRow, bytes: i64, expires: i64, deleted: bool) {
    let Ok(user) = job.requested_by.parse::<crate::platform::ids::UserId>() else { return };
    let ready = ExportRow { status: "ready".into(), expires_at: Some(expires), ..job.clone() };
    let Some(link) = download_url(app, &ready) else { return };
    let found = crate::accounts::service::load_users(app, std::slice::from_ref(&user)).await;
    let org = crate::accounts::service::org_name(app, &job.org_id).await.unwrap_or_default();
    if let Ok(Some(u)) = found.map(|v| v.into_iter().next()) {
        let mail = crate::accounts::mails::export_ready(&u.email, &u.name, &org, bytes, &link, expires, deleted);
        let _ = app.mailer.send(&mail).await;
    }
}

/// Hourly: exports past their link's lifetime expire and their chunks are deleted.
pub async fn expire(app: &App) -> Result<()> {
    let now = app.clock.now_ms();
    let old: Vec<ExportId> = with_conn!(app.db, c => {
        diesel::update(org_exports::table.filter(org_exports::status.eq("ready")).filter(org_exports::expires_at.le(now)))
            .set(org_exports::status.eq("expired"))
            .returning(org_exports::id)
            .get_results(c).await?
    });
    if !old.is_empty() {
        with_conn!(app.db, c => {
            diesel::delete(org_export_chunks::table.filter(org_export_chunks::export_id.eq_any(&old))).execute(c).await?
        });
    }
    Ok(())
}
