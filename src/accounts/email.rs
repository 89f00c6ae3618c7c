//! Tokens mailed to a user: the confirmation of their address and the reset of their password.
//! Each is single use (a conditional update), expires (24 hours and 1 hour), and is stored as a
//! keyed hash. A reset sets the password, uses up the user's other reset tokens and revokes every
//! session on every node. Asking for a reset never says whether the address has an account.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::model::{UserRow, UserTokenRow};
use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::events::{NewAudit, PendingEvent};
use crate::platform::crypto;
use crate::platform::db::schema::{sessions, user_tokens, users};
use crate::{transaction, with_conn};

const VERIFY: &str = "verify_email";
pub(super) const RESET: &str = "reset_password";
const VERIFY_PREFIX: &str = "gkv_";
const RESET_PREFIX: &str = "gkp_";
const VERIFY_TTL_MS: i64 = 24 * 3_600_000;
const RESET_TTL_MS: i64 = 3_600_000;
/// A second reset mail to the same account within this time is not sent (no mail bombing).
const RESET_SPACING_MS: i64 = 60_000;
const TOKEN_DOMAIN: &str = "user_token";

fn hash(app: &App, token: &str) -> String {
    app.secret.keyed_hash(TOKEN_DOMAIN, token)
}

/// Inserts a new token for `user`; returns it in plain text (only ever mailed).
async fn issue(app: &App, user: &UserRow, purpose: &'static str) -> Result<(String, i64)> {
    let (prefix, ttl) = if purpose == VERIFY { (VERIFY_PREFIX, VERIFY_TTL_MS) } else { (RESET_PREFIX, RESET_TTL_MS) };
    let token = format!("{prefix}{}", crypto::random_base62(43));
    let now = app.clock.now_ms();
    let row = UserTokenRow {
        token_hash: hash(app, &token),
        user_id: user.id.clone(),
        purpose: purpose.into(),
        email: user.email.clone(),
        created_at: now,
        expires_at: now + ttl,
        used_at: None,
    };
    with_conn!(app.db, c => diesel::insert_into(user_tokens::table).values(&row).execute(c).await?);
    Ok((token, row.expires_at))
}

/// Mails the user a link that confirms their address. Returns whether the mail went out.
pub async fn send_verification(app: &App, user: &UserRow) -> Result<bool> {
    let (token, expires) = issue(app, user, VERIFY).await?;
    let mail = super::mails::verify_email(app, &user.email, &user.name, &token, expires);
    Ok(app.mailer.send(&mail).await.is_ok())
}

/// The signed-in user asks for the confirmation mail again. `CONFLICT` when already confirmed.
pub async fn request_verification(app: &App, principal: &Principal) -> Result<bool> {
    let user_id = principal.user_id().ok_or_else(|| Error::forbidden("a signed-in user confirms their own address"))?;
    let user = super::service::load_users(app, std::slice::from_ref(user_id))
        .await?
        .into_iter()
        .next()
        .ok_or(Error::NotFound("user"))?;
    if user.email_verified_at.is_some() {
        return Err(Error::Conflict("your email address is already confirmed".into()));
    }
    send_verification(app, &user).await
}

/// Takes a token of `purpose` (single use, unexpired); returns its row and its user.
macro_rules! take {
    ($c:expr, $hash:expr, $purpose:expr, $now:expr) => {{
        let row: Option<UserTokenRow> = diesel::update(
            user_tokens::table
                .find($hash)
                .filter(user_tokens::purpose.eq($purpose))
                .filter(user_tokens::used_at.is_null())
                .filter(user_tokens::expires_at.gt($now)),
        )
        .set(user_tokens::used_at.eq($now))
        .returning(UserTokenRow::as_returning())
        .get_result($c)
        .await
        .optional()?;
        let row =
            row.ok_or_else(|| Error::bad_input("token", "this link is unknown, used or expired; ask for a new one"))?;
        let user: UserRow = users::table.find(&row.user_id).select(UserRow::as_select()).first($c).await?;
        (row, user)
    }};
}

fn check_shape(token: &str, prefix: &str) -> Result<()> {
    if token.starts_with(prefix) && token.len() <= 100 {
        Ok(())
    } else {
        Err(Error::bad_input("token", "this link is unknown, used or expired; ask for a new one"))
    }
}

/// Confirms the address a verification token was sent to (if it is still the user's).
pub async fn verify(app: &App, token: &str) -> Result<UserRow> {
    check_shape(token, VERIFY_PREFIX)?;
    let h = hash(app, token);
    let now = app.clock.now_ms();
    let (user, event) = transaction!(app.db, c => {
        let (row, user) = take!(c, &h, VERIFY, now);
        if user.email != row.email || user.deleted_at.is_some() {
            return Err(Error::bad_input("token", "this link was sent to an address the account no longer has"));
        }
        let user: UserRow = diesel::update(users::table.find(&user.id))
            .set((users::email_verified_at.eq(user.email_verified_at.unwrap_or(now)), users::updated_at.eq(now)))
            .returning(UserRow::as_returning())
            .get_result(c).await?;
        let data = serde_json::json!({ "user": { "id": user.id, "email": user.email } });
        let event = crate::outbox!(c,
            PendingEvent::new(app, &user.personal_org_id, "user.email_verified", data.clone()),
            NewAudit::raw(app, &user.personal_org_id, "user", user.id.as_str(), None, "user.email_verified", "user", user.id.as_str(), data));
        Ok::<_, Error>((user, event))
    })?;
    event.publish(app).await;
    Ok(user)
}

/// Mails a reset link to the account with this address, if there is one that may sign in. The
/// answer is the same either way, and as fast: the lookup and the mail happen after it.
pub async fn request_reset(app: &std::sync::Arc<App>, email: &str) -> Result<()> {
    let Ok(email) = super::service::normalise_email(email) else {
        return Err(Error::bad_input("email", "must be a valid email address"));
    };
    let app = app.clone();
    tokio::spawn(async move {
        if let Err(e) = mail_reset(&app, &email).await {
            e.log();
        }
    });
    Ok(())
}

async fn mail_reset(app: &App, email: &str) -> Result<()> {
    let user: Option<UserRow> = with_conn!(app.db, c => {
        users::table
            .filter(users::email.eq(email))
            .filter(users::deleted_at.is_null())
            .filter(users::suspended_at.is_null())
            .select(UserRow::as_select())
            .first(c).await.optional()?
    });
    let Some(user) = user else { return Ok(()) };
    let now = app.clock.now_ms();
    let recent: i64 = with_conn!(app.db, c => {
        user_tokens::table
            .filter(user_tokens::user_id.eq(&user.id))
            .filter(user_tokens::purpose.eq(RESET))
            .filter(user_tokens::created_at.gt(now - RESET_SPACING_MS))
            .count().get_result(c).await?
    });
    if recent > 0 {
        return Ok(());
    }
    let (token, expires) = issue(app, &user, RESET).await?;
    let mail = super::mails::reset_password(app, &user.email, &user.name, &token, expires);
    let _ = app.mailer.send(&mail).await;
    Ok(())
}

/// Sets a new password with a reset token; every session of the user ends on every node.
pub async fn reset(app: &App, token: &str, password: &str) -> Result<UserRow> {
    check_shape(token, RESET_PREFIX)?;
    super::service::check_password(password)?;
    let h = hash(app, token);
    let password = password.to_string();
    let phc = super::service::blocking(move || crypto::hash_password(&password)).await?.map_err(Error::internal)?;
    let now = app.clock.now_ms();
    let pg = app.db.is_postgres();
    let (user, hashes, event) = transaction!(app.db, c => {
        let (_, user) = take!(c, &h, RESET, now);
        // Ordered against a refresh of a session (see `service::refresh`).
        crate::lock_row!(c, pg, "users", user.id.as_str());
        if user.deleted_at.is_some() || user.suspended_at.is_some() {
            return Err(Error::bad_input("token", "this account cannot sign in"));
        }
        let user: UserRow = diesel::update(users::table.find(&user.id))
            .set((users::password_hash.eq(&phc), users::updated_at.eq(now)))
            .returning(UserRow::as_returning())
            .get_result(c).await?;
        diesel::update(user_tokens::table
                .filter(user_tokens::user_id.eq(&user.id))
                .filter(user_tokens::purpose.eq(RESET))
                .filter(user_tokens::used_at.is_null()))
            .set(user_tokens::used_at.eq(now))
            .execute(c).await?;
        let hashes: Vec<String> = diesel::update(sessions::table.filter(sessions::user_id.eq(&user.id)).filter(sessions::revoked_at.is_null()))
            .set(sessions::revoked_at.eq(now))
            .returning(sessions::token_hash)
            .get_results(c).await?;
        let data = serde_json::json!({ "user": { "id": user.id, "email": user.email } });
        let event = crate::outbox!(c,
            PendingEvent::new(app, &user.personal_org_id, "user.password_reset", data.clone()),
            NewAudit::raw(app, &user.personal_org_id, "user", user.id.as_str(), None, "user.password_reset", "user", user.id.as_str(), serde_json::json!({ "sessionsRevoked": hashes.len() })));
        Ok::<_, Error>((user, hashes, event))
    })?;
    for token_hash in hashes {
        crate::auth::forget_session(app, token_hash).await;
    }
    event.publish(app).await;
    Ok(user)
}
