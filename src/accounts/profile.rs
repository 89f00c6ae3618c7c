//! What a signed-in user manages about themselves: their name, their password (with the current
//! one; the other sessions end) and their sign-in sessions (listed, each revocable). Only a user
//! session may do these — not an API key or an app acting for the user.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::model::{SessionRow, UserRow};
use super::service::{blocking, check_password};
use crate::app::App;
use crate::auth::{Actor, Principal};
use crate::error::{Error, Result};
use crate::events::NewAudit;
use crate::limits::limiter::Subject;
use crate::platform::crypto;
use crate::platform::db::schema::{sessions, user_tokens, users};
use crate::platform::ids::{OrgId, SessionId, UserId};
use crate::{transaction, with_conn};

/// The signed-in user and the session of this request, or why there is none.
fn signed_in(principal: &Principal) -> Result<(&UserId, &SessionId)> {
    match &principal.actor {
        Actor::User { user_id, session_id } => Ok((user_id, session_id)),
        _ => Err(Error::forbidden(
            "only a signed-in user manages their profile, password and sessions (not an API key or an app)",
        )),
    }
}

/// The most sessions [`sessions`] lists.
pub const MAX_LISTED: i64 = 100;

/// The user's sessions that still work (not revoked, not past their refresh), newest first: the
/// newest [`MAX_LISTED`], the current one always among them (last when it is older than those).
pub async fn sessions(app: &App, principal: &Principal) -> Result<(Vec<SessionRow>, SessionId)> {
    let (user_id, current) = signed_in(principal)?;
    let now = app.clock.now_ms();
    let rows: Vec<SessionRow> = with_conn!(app.db, c => {
        let mut rows: Vec<SessionRow> = sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::refresh_expires_at.gt(now))
            .order((sessions::created_at.desc(), sessions::id.desc()))
            .limit(MAX_LISTED)
            .select(SessionRow::as_select())
            .load(c).await?;
        if !rows.iter().any(|s| &s.id == current) {
            let this: Option<SessionRow> = sessions::table
                .find(current)
                .select(SessionRow::as_select())
                .first(c).await.optional()?;
            if let Some(this) = this {
                rows.truncate(MAX_LISTED as usize - 1);
                rows.push(this);
            }
        }
        rows
    });
    Ok((rows, current.clone()))
}

/// Ends one of the user's sessions (its token and refresh token stop working on every node).
pub async fn revoke_session(app: &App, principal: &Principal, id: &str) -> Result<()> {
    let (user_id, _) = signed_in(principal)?;
    let now = app.clock.now_ms();
    let token_hash: Option<String> = transaction!(app.db, c => {
        let hash: Option<String> = diesel::update(sessions::table
                .filter(sessions::id.eq(id))
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::revoked_at.is_null()))
            .set(sessions::revoked_at.eq(now))
            .returning(sessions::token_hash)
            .get_result(c).await.optional()?;
        if hash.is_some() {
            let owner: OrgId = users::table.find(user_id).select(users::personal_org_id).first(c).await?;
            crate::audit!(c, NewAudit::raw(app, &owner, "user", user_id.as_str(), principal.ip, "user.session_revoked", "session", id, serde_json::json!({})));
        }
        Ok::<_, Error>(hash)
    })?;
    let Some(token_hash) = token_hash else {
        return Err(Error::NotFound("session"));
    };
    crate::auth::forget_session(app, token_hash).await;
    Ok(())
}

/// Sets a new password after checking the current one. Every other session of the user ends; the
/// one making the change goes on.
pub async fn change_password(app: &App, principal: &Principal, current: &str, new: &str) -> Result<usize> {
    let (user_id, session_id) = signed_in(principal)?;
    check_password(new).map_err(|_| Error::bad_input("newPassword", "must be 8 to 128 characters"))?;
    charge_attempt(app, user_id).await?;
    let user: UserRow =
        with_conn!(app.db, c => users::table.find(user_id).select(UserRow::as_select()).first(c).await?);
    let (phc, given) = (user.password_hash.clone(), current.to_string());
    if !blocking(move || crypto::verify_password(&given, &phc)).await? {
        return Err(Error::bad_input("currentPassword", "is not the account's password"));
    }
    let new = new.to_string();
    let phc = blocking(move || crypto::hash_password(&new)).await?.map_err(Error::internal)?;
    let now = app.clock.now_ms();
    let pg = app.db.is_postgres();
    let ended: Vec<String> = transaction!(app.db, c => {
        // Ordered against a refresh of another session (see `service::refresh`).
        crate::lock_row!(c, pg, "users", user_id.as_str());
        diesel::update(users::table.find(user_id))
            .set((users::password_hash.eq(&phc), users::updated_at.eq(now)))
            .execute(c).await?;
        let ended: Vec<String> = diesel::update(sessions::table
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::id.ne(session_id))
                .filter(sessions::revoked_at.is_null()))
            .set(sessions::revoked_at.eq(now))
            .returning(sessions::token_hash)
            .get_results(c).await?;
        // A reset link mailed before the change would undo it: used up.
        diesel::update(user_tokens::table
                .filter(user_tokens::user_id.eq(user_id))
                .filter(user_tokens::purpose.eq(super::email::RESET))
                .filter(user_tokens::used_at.is_null()))
            .set(user_tokens::used_at.eq(now))
            .execute(c).await?;
        crate::audit!(c, NewAudit::raw(app, &user.personal_org_id, "user", user_id.as_str(), principal.ip, "user.password_changed", "user", user_id.as_str(), serde_json::json!({ "sessionsRevoked": ended.len() })));
        Ok::<_, Error>(ended)
    })?;
    let n = ended.len();
    for token_hash in ended {
        crate::auth::forget_session(app, token_hash).await;
    }
    Ok(n)
}

/// Counts a password change attempt of the user, right or wrong, across every node: past
/// [`Policy::password_changes`](crate::limits::policy::Policy::password_changes) the change is
/// refused before the current password is looked at, so a correct guess answers the same.
async fn charge_attempt(app: &App, user_id: &UserId) -> Result<()> {
    let subject = Subject { rate: format!("pwchange:{user_id}"), org: format!("pwchange:{user_id}") };
    let policy = app.plans.password_changes.clone();
    let (decision, _) = app.limiter.acquire(&subject, policy, 1, 0, app.clock.now_ms()).await;
    crate::server::pipeline::record_decision(app, &decision);
    // The hour's window refused: said in the words of this limit.
    match decision.refusal_error() {
        None => Ok(()),
        Some(Error::Limited { code, retry_after_secs, .. }) => Err(Error::Limited {
            code,
            message: format!(
                "too many password changes attempted ({} an hour); retry in {retry_after_secs} s",
                <[_]>::first(&decision.policy.windows).map_or(0, |w| w.limit)
            ),
            retry_after_secs,
            window: Some("password_changes".into()),
        }),
        Some(e) => Err(e),
    }
}

/// Renames the user (1 to 100 characters).
pub async fn update_profile(app: &App, principal: &Principal, name: &str) -> Result<UserRow> {
    let (user_id, _) = signed_in(principal)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::bad_input("name", "must be 1 to 100 characters"));
    }
    let now = app.clock.now_ms();
    let user = transaction!(app.db, c => {
        let user: UserRow = diesel::update(users::table.find(user_id))
            .set((users::name.eq(name), users::updated_at.eq(now)))
            .returning(UserRow::as_returning())
            .get_result(c).await?;
        crate::audit!(c, NewAudit::raw(app, &user.personal_org_id, "user", user_id.as_str(), principal.ip, "user.updated", "user", user_id.as_str(), serde_json::json!({ "changes": ["name"] })));
        Ok::<_, Error>(user)
    })?;
    Ok(user)
}
