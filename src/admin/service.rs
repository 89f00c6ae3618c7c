//! Platform administration: users and organizations listed and searched, suspended and restored,
//! a user erased (GDPR), platform administration granted and revoked. Every function here is for
//! signed-in platform administrators only (a service key is platform-wide but is not a person:
//! it verifies keys and publishes events, it does not administer people).
//!
//! Suspending a user revokes every session at once on every node and refuses their sign-in with
//! `USER_SUSPENDED`. Suspending an organization refuses every credential acting for it
//! (`ORGANIZATION_SUSPENDED`) and pauses its webhooks; nothing is deleted, and lifting it makes the
//! paused deliveries due at once. Erasing a user replaces their personal data (address, name,
//! password), ends their sessions and memberships, scrubs their address from events and audit
//! entries, and deletes their personal organization (its invoices stay).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::accounts::lifecycle::{self, DeletedBy};
use crate::accounts::model::{OrgRow, UserRow};
use crate::accounts::org_states::Denial;
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::error::{Error, Result};
use crate::events::{NewAudit, PendingEvent};
use crate::pagination::{Page, PageRequest};
use crate::platform::db::schema::{
    api_key_secrets, api_keys, memberships, oauth_tokens, organizations, sessions, user_tokens, users,
    webhook_deliveries, webhook_endpoints,
};
use crate::platform::ids::{OrgId, UserId};
use crate::{keyset_page, transaction, with_conn};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

pub fn require_admin(principal: &Principal) -> Result<()> {
    if principal.is_platform_admin() {
        Ok(())
    } else {
        Err(Error::forbidden("platform administration is for platform administrators"))
    }
}

/// `%text%` for LIKE, lower-cased, with LIKE's own characters taken literally (escape `\`).
fn like_pattern(search: &str) -> Result<String> {
    let s = search.trim().to_lowercase();
    if s.chars().count() > 100 {
        return Err(Error::bad_input("search", "must be at most 100 characters"));
    }
    let escaped: String = s
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    Ok(format!("%{escaped}%"))
}

/// Users, newest first; `search` matches the address or the name (case-insensitive). Erased users
/// are left out.
pub async fn list_users(
    app: &App,
    principal: &Principal,
    search: Option<&str>,
    page: &PageRequest,
) -> Result<Page<UserRow>> {
    require_admin(principal)?;
    let pattern = search.map(like_pattern).transpose()?;
    macro_rules! base {
        () => {{
            let mut q = users::table.filter(users::deleted_at.is_null()).into_boxed();
            if let Some(p) = &pattern {
                q = q.filter(users::email.like(p).escape('\\').or(lower(users::name).like(p).escape('\\')));
            }
            q
        }};
    }
    let (rows, total) = with_conn!(app.db, c => keyset_page!(c, base!(), users::id, UserRow, page));
    Ok(Page::from_rows(rows, page, total))
}

/// Organizations, newest first; `search` matches the name or the slug (case-insensitive).
pub async fn list_orgs(
    app: &App,
    principal: &Principal,
    search: Option<&str>,
    page: &PageRequest,
) -> Result<Page<OrgRow>> {
    require_admin(principal)?;
    let pattern = search.map(like_pattern).transpose()?;
    macro_rules! base {
        () => {{
            let mut q = organizations::table.into_boxed();
            if let Some(p) = &pattern {
                q = q.filter(
                    lower(organizations::name).like(p).escape('\\').or(organizations::slug.like(p).escape('\\')),
                );
            }
            q
        }};
    }
    let (rows, total) = with_conn!(app.db, c => keyset_page!(c, base!(), organizations::id, OrgRow, page));
    Ok(Page::from_rows(rows, page, total))
}

async fn find_user(app: &App, id: &str) -> Result<UserRow> {
    let id: UserId = id.parse().map_err(|_| Error::NotFound("user"))?;
    with_conn!(app.db, c => {
        users::table.find(&id).filter(users::deleted_at.is_null()).select(UserRow::as_select()).first(c).await.optional()?
    })
    .ok_or(Error::NotFound("user"))
}

/// One user with the organizations they belong to and their role in each.
pub async fn get_user(app: &App, principal: &Principal, id: &str) -> Result<(UserRow, Vec<(OrgRow, Option<Role>)>)> {
    require_admin(principal)?;
    let user = find_user(app, id).await?;
    let orgs: Vec<(OrgRow, String)> = with_conn!(app.db, c => {
        organizations::table
            .inner_join(memberships::table)
            .filter(memberships::user_id.eq(&user.id))
            .order(organizations::id.asc())
            .select((OrgRow::as_select(), memberships::role))
            .load(c).await?
    });
    Ok((user, orgs.into_iter().map(|(o, r)| (o, Role::parse(&r))).collect()))
}

fn user_data(u: &UserRow, reason: Option<&str>) -> serde_json::Value {
    serde_json::json!({ "user": { "id": u.id, "email": u.email }, "reason": reason })
}

/// Suspends (`Some(reason)`) or restores (`None`) a user. A suspension ends every session on every
/// node at once.
pub async fn set_user_suspended(app: &App, principal: &Principal, id: &str, reason: Option<&str>) -> Result<UserRow> {
    require_admin(principal)?;
    let user = find_user(app, id).await?;
    if reason.is_some() && principal.user_id() == Some(&user.id) {
        return Err(Error::bad_input("id", "you cannot suspend yourself"));
    }
    let reason = reason.map(|r| r.trim().chars().take(500).collect::<String>());
    let now = app.clock.now_ms();
    let (row, hashes, event) = transaction!(app.db, c => {
        let row: UserRow = diesel::update(users::table.find(&user.id))
            .set((
                users::suspended_at.eq(reason.as_ref().map(|_| user.suspended_at.unwrap_or(now))),
                users::suspended_reason.eq(&reason),
                users::updated_at.eq(now),
            ))
            .returning(UserRow::as_returning())
            .get_result(c).await?;
        let hashes: Vec<String> = if reason.is_some() {
            diesel::update(sessions::table.filter(sessions::user_id.eq(&user.id)).filter(sessions::revoked_at.is_null()))
                .set(sessions::revoked_at.eq(now))
                .returning(sessions::token_hash)
                .get_results(c).await?
        } else {
            Vec::new()
        };
        let (kind, data) = match &reason {
            Some(r) => ("user.suspended", user_data(&row, Some(r))),
            None => ("user.unsuspended", user_data(&row, None)),
        };
        let event = crate::outbox!(c,
            PendingEvent::new(app, &row.personal_org_id, kind, data.clone()),
            NewAudit::raw(app, &row.personal_org_id, principal.actor_type(), &principal.actor_id(), principal.ip, kind, "user", row.id.as_str(), data));
        Ok::<_, Error>((row, hashes, event))
    })?;
    for h in hashes {
        crate::auth::forget_session(app, h).await;
    }
    event.publish(app).await;
    Ok(row)
}

/// Grants (`true`) or revokes platform administration; the user's personal organization becomes
/// (or stops being) a platform organization, whose API keys are service keys. The last
/// administrator keeps it.
pub async fn set_platform_admin(
    app: &App,
    principal: Option<&Principal>,
    user: &UserRow,
    grant: bool,
) -> Result<UserRow> {
    if let Some(p) = principal {
        require_admin(p)?;
    }
    let now = app.clock.now_ms();
    let pg = app.db.is_postgres();
    let (row, key_hashes) = transaction!(app.db, c => {
        if !grant {
            // Two administrators revoking each other at once must not both win.
            if pg {
                diesel::sql_query("SELECT id FROM users WHERE is_platform_admin FOR UPDATE").execute(c).await?;
            }
            let others: i64 = users::table
                .filter(users::is_platform_admin.eq(true))
                .filter(users::id.ne(&user.id))
                .filter(users::deleted_at.is_null())
                .filter(users::suspended_at.is_null())
                .count().get_result(c).await?;
            if others == 0 {
                return Err(Error::Conflict("the last platform administrator cannot be revoked; grant another one first".into()));
            }
        }
        let row: UserRow = diesel::update(users::table.find(&user.id))
            .set((users::is_platform_admin.eq(grant), users::updated_at.eq(now)))
            .returning(UserRow::as_returning())
            .get_result(c).await?;
        diesel::update(organizations::table.find(&row.personal_org_id)).set(organizations::is_platform.eq(grant)).execute(c).await?;
        let keys: Vec<String> = api_keys::table.filter(api_keys::org_id.eq(&row.personal_org_id)).select(api_keys::id).load(c).await?;
        let key_hashes: Vec<String> = api_key_secrets::table.filter(api_key_secrets::key_id.eq_any(&keys)).select(api_key_secrets::key_hash).load(c).await?;
        let action = if grant { "user.platform_admin_granted" } else { "user.platform_admin_revoked" };
        let (actor_type, actor_id, ip) = match principal {
            Some(p) => (p.actor_type(), p.actor_id(), p.ip),
            None => ("cli", "gantry admin".to_string(), None),
        };
        crate::audit!(c, NewAudit::raw(app, &row.personal_org_id, actor_type, &actor_id, ip, action, "user", row.id.as_str(), serde_json::json!({ "email": row.email })));
        Ok::<_, Error>((row, key_hashes))
    })?;
    // Cached sessions and keys carry the flag: drop them on every node.
    crate::accounts::service::forget_user_sessions(app, std::slice::from_ref(&row.id)).await?;
    crate::auth::forget_keys(app, key_hashes).await;
    Ok(row)
}

/// The user with this address (the `gantry admin` command), or NOT_FOUND naming it.
pub async fn user_by_email(app: &App, email: &str) -> Result<UserRow> {
    let email = email.trim().to_lowercase();
    let found: Option<UserRow> = with_conn!(app.db, c => {
        users::table.filter(users::email.eq(&email)).filter(users::deleted_at.is_null()).select(UserRow::as_select()).first(c).await.optional()?
    });
    found.ok_or_else(|| Error::bad_input("email", format!("no user has the address {email}")))
}

/// Grants or revokes administration by id (GraphQL, REST).
pub async fn set_platform_admin_by_id(app: &App, principal: &Principal, id: &str, grant: bool) -> Result<UserRow> {
    require_admin(principal)?;
    let user = find_user(app, id).await?;
    if !grant && principal.user_id() == Some(&user.id) {
        return Err(Error::bad_input("id", "you cannot revoke your own administration; ask another administrator"));
    }
    set_platform_admin(app, Some(principal), &user, grant).await
}

/// Erases a user (see the module doc). Refused while they are the last OWNER of an organization
/// that has other members.
pub async fn delete_user(app: &App, principal: &Principal, id: &str) -> Result<()> {
    require_admin(principal)?;
    let user = find_user(app, id).await?;
    if principal.user_id() == Some(&user.id) {
        return Err(Error::bad_input("id", "you cannot erase your own account here"));
    }
    if user.is_platform_admin {
        return Err(Error::Conflict("revoke this user's platform administration first".into()));
    }
    let pg = app.db.is_postgres();
    // An organization left without an owner is refused: someone must take it over first. Checked
    // before anything is changed, and again under each organization's lock below.
    macro_rules! last_owner_of {
        ($c:expr, $lock:expr) => {{
            let owned: Vec<(OrgId, String)> = memberships::table
                .inner_join(organizations::table)
                .filter(memberships::user_id.eq(&user.id))
                .filter(memberships::role.eq(Role::Owner.as_str()))
                .filter(organizations::deleted_at.is_null())
                .filter(organizations::is_personal.eq(false))
                .select((organizations::id, organizations::name))
                .load($c)
                .await?;
            for (org, name) in owned {
                if $lock {
                    crate::lock_row!($c, pg, "organizations", org.as_str());
                }
                let other_owners: i64 = memberships::table
                    .filter(memberships::org_id.eq(&org))
                    .filter(memberships::role.eq(Role::Owner.as_str()))
                    .filter(memberships::user_id.ne(&user.id))
                    .count()
                    .get_result($c)
                    .await?;
                if other_owners == 0 {
                    return Err(Error::Conflict(format!(
                        "{} is the last OWNER of {name} ({org}): transfer its ownership or delete it first",
                        user.email
                    )));
                }
            }
        }};
    }
    let checked: Result<()> = async {
        with_conn!(app.db, c => { last_owner_of!(c, false); });
        Ok(())
    }
    .await;
    checked?;
    // The personal organization first (its keys and tokens revoked): should the erasure below fail,
    // it can be asked again.
    match lifecycle::delete(app, DeletedBy::Administrator(principal), &user.personal_org_id).await {
        Ok(_) | Err(Error::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let now = app.clock.now_ms();
    let erased_email = format!("deleted+{}@invalid", user.id);
    let (hashes, tokens, events) = transaction!(app.db, c => {
        crate::lock_row!(c, pg, "users", user.id.as_str());
        last_owner_of!(c, true);
        diesel::update(users::table.find(&user.id))
            .set((
                users::email.eq(&erased_email),
                users::name.eq("Deleted user"),
                users::password_hash.eq(""),
                users::email_verified_at.eq(None::<i64>),
                users::suspended_at.eq(None::<i64>),
                users::suspended_reason.eq(None::<String>),
                users::deleted_at.eq(now),
                users::updated_at.eq(now),
            ))
            .execute(c).await?;
        let hashes: Vec<String> = diesel::update(sessions::table.filter(sessions::user_id.eq(&user.id)).filter(sessions::revoked_at.is_null()))
            .set(sessions::revoked_at.eq(now))
            .returning(sessions::token_hash)
            .get_results(c).await?;
        // What apps hold on the user's consent ends with the user.
        let tokens: Vec<String> = diesel::update(oauth_tokens::table.filter(oauth_tokens::user_id.eq(&user.id)).filter(oauth_tokens::revoked_at.is_null()))
            .set(oauth_tokens::revoked_at.eq(now))
            .returning(oauth_tokens::token_hash)
            .get_results(c).await?;
        // Out of every team, each with its event and audit entry.
        let left: Vec<(OrgId, String)> = memberships::table
            .filter(memberships::user_id.eq(&user.id))
            .filter(memberships::org_id.ne(&user.personal_org_id))
            .select((memberships::org_id, memberships::role))
            .load(c).await?;
        let mut events = Vec::new();
        for (org, role) in &left {
            let data = serde_json::json!({ "member": { "userId": user.id, "email": erased_email, "role": role }, "left": false });
            events.push(crate::outbox!(c,
                PendingEvent::new(app, org, "member.removed", data.clone()),
                NewAudit::raw(app, org, principal.actor_type(), &principal.actor_id(), principal.ip, "member.removed", "user", user.id.as_str(), data)));
        }
        diesel::delete(memberships::table.filter(memberships::user_id.eq(&user.id)).filter(memberships::org_id.ne(&user.personal_org_id))).execute(c).await?;
        diesel::delete(user_tokens::table.filter(user_tokens::user_id.eq(&user.id))).execute(c).await?;
        // The address was in event payloads, audit entries, invitations and the request bodies of
        // webhook attempts (member.joined, user.created, …).
        let scrub = |col: &str, table: &str| format!("UPDATE {table} SET {col} = REPLACE({col}, {p1}, {p2}) WHERE {col} LIKE {p3}",
            p1 = if pg { "$1" } else { "?1" }, p2 = if pg { "$2" } else { "?2" }, p3 = if pg { "$3" } else { "?3" });
        for (table, col) in [("events", "payload"), ("audit_log", "data"), ("webhook_attempts", "request_body"), ("invitations", "email")] {
            diesel::sql_query(scrub(col, table))
                .bind::<diesel::sql_types::Text, _>(&user.email)
                .bind::<diesel::sql_types::Text, _>(&erased_email)
                // LIKE only narrows the rows; `%` and `_` in the address may match more, REPLACE is exact.
                .bind::<diesel::sql_types::Text, _>(format!("%{}%", user.email))
                .execute(c).await?;
        }
        let data = serde_json::json!({ "user": { "id": user.id } });
        events.push(crate::outbox!(c,
            PendingEvent::new(app, &principal.org_id, "user.deleted", data.clone()),
            NewAudit::by(app, principal, "user.deleted", "user", user.id.as_str(), data)));
        Ok::<_, Error>((hashes, tokens, events))
    })?;
    for h in hashes {
        crate::auth::forget_session(app, h).await;
    }
    crate::auth::forget_tokens(app, tokens).await;
    for e in events {
        e.publish(app).await;
    }
    Ok(())
}

async fn find_org(app: &App, id: &str) -> Result<OrgRow> {
    let id: OrgId = id.parse().map_err(|_| Error::NotFound("organization"))?;
    with_conn!(app.db, c => {
        organizations::table.find(&id).select(OrgRow::as_select()).first(c).await.optional()?
    })
    .ok_or(Error::NotFound("organization"))
}

/// Suspends (`Some(reason)`) or restores (`None`) an organization: its credentials are refused and
/// its webhooks wait, on every node at once; restoring makes the waiting deliveries due now.
pub async fn set_org_suspended(app: &App, principal: &Principal, id: &str, reason: Option<&str>) -> Result<OrgRow> {
    require_admin(principal)?;
    let org = find_org(app, id).await?;
    if org.deleted_at.is_some() {
        return Err(Error::Conflict("this organization was deleted".into()));
    }
    if org.is_platform && reason.is_some() {
        return Err(Error::Conflict("a platform organization cannot be suspended".into()));
    }
    let reason = reason.map(|r| r.trim().chars().take(500).collect::<String>());
    let now = app.clock.now_ms();
    let (row, event) = transaction!(app.db, c => {
        let row: OrgRow = diesel::update(organizations::table.find(&org.id))
            .set((
                organizations::suspended_at.eq(reason.as_ref().map(|_| org.suspended_at.unwrap_or(now))),
                organizations::suspended_reason.eq(&reason),
                organizations::updated_at.eq(now),
            ))
            .returning(OrgRow::as_returning())
            .get_result(c).await?;
        if reason.is_none() {
            // Deliveries held back while suspended are due at once.
            let endpoints = webhook_endpoints::table.filter(webhook_endpoints::org_id.eq(&row.id)).select(webhook_endpoints::id);
            diesel::update(webhook_deliveries::table
                    .filter(webhook_deliveries::endpoint_id.eq_any(endpoints))
                    .filter(webhook_deliveries::status.eq("pending"))
                    .filter(webhook_deliveries::next_attempt_at.le(now + crate::webhooks::delivery::PAUSED_RECHECK_MS)))
                .set(webhook_deliveries::next_attempt_at.eq(now))
                .execute(c).await?;
        }
        let kind = if reason.is_some() { "org.suspended" } else { "org.unsuspended" };
        let data = serde_json::json!({ "organization": { "id": row.id, "name": row.name }, "reason": reason });
        let event = crate::outbox!(c,
            PendingEvent::new(app, &row.id, kind, data.clone()),
            NewAudit::raw(app, &row.id, principal.actor_type(), &principal.actor_id(), principal.ip, kind, "organization", row.id.as_str(), data));
        Ok::<_, Error>((row, event))
    })?;
    crate::accounts::service::publish_org_state(app, &row.id, reason.as_ref().map(|_| Denial::Suspended)).await;
    app.webhooks.wake();
    event.publish(app).await;
    Ok(row)
}

/// Renames a user.
pub async fn rename_user(app: &App, principal: &Principal, id: &str, name: &str) -> Result<UserRow> {
    require_admin(principal)?;
    let user = find_user(app, id).await?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::bad_input("name", "must be 1 to 100 characters"));
    }
    let now = app.clock.now_ms();
    let row = transaction!(app.db, c => {
        let row: UserRow = diesel::update(users::table.find(&user.id))
            .set((users::name.eq(name), users::updated_at.eq(now)))
            .returning(UserRow::as_returning())
            .get_result(c).await?;
        crate::audit!(c, NewAudit::raw(app, &row.personal_org_id, principal.actor_type(), &principal.actor_id(), principal.ip, "user.renamed", "user", row.id.as_str(), serde_json::json!({ "name": name })));
        Ok::<_, Error>(row)
    })?;
    Ok(row)
}

/// Audits a platform administrator reading an organization they are not a member of (who, what,
/// when): an entry in that organization's audit log, written before the data is returned.
pub async fn record_access(
    app: &App,
    principal: &Principal,
    org: &OrgId,
    operation: &str,
    surface: &str,
) -> Result<()> {
    let entry = NewAudit::raw(
        app,
        org,
        principal.actor_type(),
        &principal.actor_id(),
        principal.ip,
        "admin.accessed",
        "organization",
        org.as_str(),
        serde_json::json!({ "operation": operation, "surface": surface }),
    );
    with_conn!(app.db, c => crate::audit!(c, entry));
    Ok(())
}
