//! Accounts rules: registration, login, sessions (opaque tokens stored as keyed hashes, with
//! expiry, rotation on refresh and revocation on logout), organizations and memberships.
//! Knows nothing of HTTP or GraphQL.

use std::net::IpAddr;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::model::*;
use crate::app::App;
use crate::auth::{Actor, Principal, Role, SessionCredential};
use crate::error::{Error, Result};
use crate::events::{NewAudit, PendingEvent};
use crate::platform::crypto;
use crate::platform::db::schema::{memberships, organizations, sessions, settings, users};
use crate::platform::ids::{OrgId, SessionId, UserId};
use crate::{transaction, with_conn};

/// A session as issued to the client: the only time its tokens exist in plain text.
#[derive(Debug, Clone)]
pub struct IssuedSession {
    pub id: SessionId,
    pub token: String,
    pub refresh_token: String,
    pub expires_at: i64,
    pub refresh_expires_at: i64,
}

pub struct RegisterInput {
    pub email: String,
    pub password: String,
    pub name: Option<String>,
    /// An invitation token (`gki_…`) sent to this address: the new account joins its organization.
    pub invitation_token: Option<String>,
}

pub(crate) fn normalise_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace)
        && email.matches('@').count() == 1;
    if !valid {
        return Err(Error::bad_input("email", "must be a valid email address"));
    }
    Ok(email)
}

pub(crate) fn check_password(password: &str) -> Result<()> {
    let n = password.chars().count();
    if n < 8 {
        return Err(Error::bad_input("password", "must be at least 8 characters"));
    }
    if n > 128 {
        return Err(Error::bad_input("password", "must be at most 128 characters"));
    }
    Ok(())
}

/// Password hashing is deliberately expensive (~20 MiB, tens of ms): at most one per core at a
/// time, so a burst of logins queues instead of exhausting memory and blocking threads.
static HASHING: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2))
});

pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let _permit = HASHING.acquire().await.map_err(Error::internal)?;
    tokio::task::spawn_blocking(f).await.map_err(Error::internal)
}

fn new_session_row<'a>(
    app: &App,
    user_id: &'a UserId,
    id: &'a SessionId,
    hashes: &'a (String, String),
    now: i64,
) -> NewSession<'a> {
    NewSession {
        id,
        user_id,
        token_hash: &hashes.0,
        refresh_hash: &hashes.1,
        expires_at: now + app.config.session_ttl_secs * 1000,
        refresh_expires_at: now + app.config.refresh_ttl_secs * 1000,
        created_at: now,
    }
}

fn mint_session(app: &App, now: i64) -> (IssuedSession, (String, String)) {
    let token = format!("{}{}", crate::auth::SESSION_PREFIX, crypto::random_base62(43));
    let refresh_token = format!("{}{}", crate::auth::REFRESH_PREFIX, crypto::random_base62(43));
    let hashes =
        (crate::auth::session_hash(&app.secret, &token), crate::auth::refresh_hash(&app.secret, &refresh_token));
    let issued = IssuedSession {
        id: SessionId::generate(now),
        token,
        refresh_token,
        expires_at: now + app.config.session_ttl_secs * 1000,
        refresh_expires_at: now + app.config.refresh_ttl_secs * 1000,
    };
    (issued, hashes)
}

/// Creates a user, their personal organization (with them as OWNER) and a first session. The first
/// user of a fresh installation becomes a platform administrator.
pub async fn register(app: &App, input: RegisterInput, ip: Option<IpAddr>) -> Result<(UserRow, IssuedSession)> {
    let email = normalise_email(&input.email)?;
    check_password(&input.password)?;
    let name = match input.name.as_deref().map(str::trim) {
        Some("") => return Err(Error::bad_input("name", "must not be empty")),
        Some(n) if n.chars().count() > 100 => {
            return Err(Error::bad_input("name", "must be at most 100 characters"));
        }
        Some(n) => n.to_string(),
        None => email.split('@').next().unwrap_or("user").to_string(),
    };
    let invitation =
        input.invitation_token.as_deref().map(|t| super::invitations::hash_for_accept(app, t)).transpose()?;
    let password = input.password;
    let hash = blocking(move || crypto::hash_password(&password)).await?.map_err(Error::internal)?;

    let now = app.clock.now_ms();
    let user_id = UserId::generate(now);
    let org_id = OrgId::generate(now);
    let slug = format!("personal-{}", &org_id.as_str()[4..]);
    let org_name = format!("{name}'s organization");
    let (issued, hashes) = mint_session(app, now);

    let (user, is_admin, event, joined) = transaction!(app.db, c => {
        let taken: i64 = users::table.filter(users::email.eq(&email)).count().get_result(c).await?;
        if taken > 0 {
            return Err(Error::Conflict("an account with this email already exists".into()));
        }
        // The first registration claims platform administration; the unique key makes it race-free.
        let claimed = diesel::insert_into(settings::table)
            .values((settings::name.eq("platform_admin_claimed"), settings::value.eq(user_id.as_str()), settings::created_at.eq(now)))
            .on_conflict_do_nothing()
            .execute(c)
            .await? == 1;
        diesel::insert_into(organizations::table)
            .values(NewOrg { id: &org_id, name: &org_name, slug: &slug, is_personal: true, is_platform: claimed, created_at: now, updated_at: now })
            .execute(c).await?;
        crate::insert_default_subscription!(c, &org_id, now);
        let mut user = diesel::insert_into(users::table)
            .values(NewUser { id: &user_id, email: &email, name: &name, password_hash: &hash, is_platform_admin: claimed, personal_org_id: &org_id, created_at: now, updated_at: now })
            .returning(UserRow::as_returning())
            .get_result(c).await?;
        diesel::insert_into(memberships::table)
            .values(MembershipRow { org_id: org_id.clone(), user_id: user_id.clone(), role: Role::Owner.as_str().into(), created_at: now })
            .execute(c).await?;
        diesel::insert_into(sessions::table).values(new_session_row(app, &user_id, &issued.id, &hashes, now)).execute(c).await?;
        crate::audit!(c, NewAudit::raw(app, &org_id, "user", user_id.as_str(), ip, "user.registered", "user", user_id.as_str(), serde_json::json!({})));
        let event = crate::outbox!(c, PendingEvent::new(app, &org_id, "user.created", serde_json::json!({ "user": { "id": user_id, "email": email } })));
        // Signing up through an invitation: the new account joins its organization, and the
        // address is confirmed (the token was mailed to it).
        let joined = match &invitation {
            Some(h) => {
                let (_, joined) = crate::take_invitation!(c, app, h, &user, now)?;
                user.email_verified_at = Some(now);
                Some(joined)
            }
            None => None,
        };
        Ok::<_, Error>((user, claimed, event, joined))
    })?;
    if is_admin {
        tracing::info!(user = %user.id, email = %user.email, "the first registered user is the platform administrator");
    }
    event.publish(app).await;
    match joined {
        Some(e) => e.publish(app).await,
        None => {
            super::email::send_verification(app, &user).await?;
        }
    }
    Ok((user, issued))
}

/// A precomputed argon2id hash, checked when the email is unknown so both paths cost the same.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| crypto::hash_password("gantry-timing-equaliser").unwrap_or_default());

/// Checks email and password and opens a session. Unknown email and wrong password are the same
/// error, after the same amount of work.
pub async fn login(app: &App, email: &str, password: &str, ip: Option<IpAddr>) -> Result<(UserRow, IssuedSession)> {
    let email = email.trim().to_lowercase();
    let user: Option<UserRow> = with_conn!(app.db, c => {
        users::table.filter(users::email.eq(&email)).select(UserRow::as_select()).first(c).await.optional()?
    });
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    let password = password.to_string();
    let ok = blocking(move || crypto::verify_password(&password, phc.as_deref().unwrap_or(&DUMMY_HASH))).await?;
    let Some(user) = user.filter(|u| ok && u.deleted_at.is_none()) else {
        return Err(Error::unauthenticated("invalid email or password"));
    };
    if user.suspended_at.is_some() {
        return Err(Error::Denied {
            reason: "USER_SUSPENDED",
            message: "this account is suspended by a platform administrator; sign-in is refused".into(),
        });
    }
    let now = app.clock.now_ms();
    let (issued, hashes) = mint_session(app, now);
    transaction!(app.db, c => {
        diesel::insert_into(sessions::table).values(new_session_row(app, &user.id, &issued.id, &hashes, now)).execute(c).await?;
        crate::audit!(c, NewAudit::raw(app, &user.personal_org_id, "user", user.id.as_str(), ip, "user.login", "session", issued.id.as_str(), serde_json::json!({})));
        Ok::<_, Error>(())
    })?;
    Ok((user, issued))
}

/// Revokes the session the principal signed in with.
pub async fn logout(app: &App, principal: &Principal) -> Result<()> {
    let Actor::User { session_id, .. } = &principal.actor else {
        return Err(Error::bad_input("authorization", "logout needs a session token, not an API key"));
    };
    let now = app.clock.now_ms();
    let token_hash: String = with_conn!(app.db, c => {
        diesel::update(sessions::table.filter(sessions::id.eq(session_id)).filter(sessions::revoked_at.is_null()))
            .set(sessions::revoked_at.eq(now))
            .returning(sessions::token_hash)
            .get_result(c).await?
    });
    crate::auth::forget_session(app, token_hash).await;
    Ok(())
}

/// Exchanges a refresh token for a new session; the old session (and its refresh token) is revoked,
/// so each refresh token works once.
pub async fn refresh(app: &App, refresh_token: &str) -> Result<(UserRow, IssuedSession)> {
    let invalid = || Error::unauthenticated("invalid or expired refresh token");
    if !refresh_token.starts_with(crate::auth::REFRESH_PREFIX) {
        return Err(invalid());
    }
    let hash = crate::auth::refresh_hash(&app.secret, refresh_token);
    let pg = app.db.is_postgres();
    let now = app.clock.now_ms();
    let (issued, hashes) = mint_session(app, now);
    let (user, old_token_hash) = transaction!(app.db, c => {
        let old: Option<SessionRow> = sessions::table.filter(sessions::refresh_hash.eq(&hash)).select(SessionRow::as_select()).first(c).await.optional()?;
        let Some(old) = old else { return Err(invalid()) };
        if old.revoked_at.is_some() || old.refresh_expires_at <= now {
            return Err(invalid());
        }
        // The user's row orders this against a password change or reset, which end every other
        // session: one that commits first is seen by the other.
        crate::lock_row!(c, pg, "users", old.user_id.as_str());
        let revoked = diesel::update(sessions::table.filter(sessions::id.eq(&old.id)).filter(sessions::revoked_at.is_null()))
            .set(sessions::revoked_at.eq(now)).execute(c).await?;
        if revoked != 1 {
            return Err(invalid());
        }
        diesel::insert_into(sessions::table).values(new_session_row(app, &old.user_id, &issued.id, &hashes, now)).execute(c).await?;
        let user: UserRow = users::table.find(&old.user_id).select(UserRow::as_select()).first(c).await?;
        Ok::<_, Error>((user, old.token_hash))
    })?;
    crate::auth::forget_session(app, old_token_hash).await;
    Ok((user, issued))
}

/// The session behind a token, by the token's keyed hash (for `auth`, which caches it).
pub(crate) async fn load_session_credential(app: &App, token_hash: &str) -> Result<Option<SessionCredential>> {
    let found: Option<(SessionRow, UserRow)> = with_conn!(app.db, c => {
        sessions::table
            .inner_join(users::table)
            .filter(sessions::token_hash.eq(token_hash))
            .filter(sessions::revoked_at.is_null())
            .select((SessionRow::as_select(), UserRow::as_select()))
            .first(c).await.optional()?
    });
    let Some((session, user)) = found else {
        return Ok(None);
    };
    let rows: Vec<(MembershipRow, bool)> = with_conn!(app.db, c => {
        memberships::table
            .inner_join(organizations::table)
            .filter(memberships::user_id.eq(&user.id))
            .select((MembershipRow::as_select(), organizations::is_platform))
            .load(c).await?
    });
    let memberships = rows
        .into_iter()
        .filter_map(|(m, is_platform)| Role::parse(&m.role).map(|r| (m.org_id, r, is_platform)))
        .collect();
    Ok(Some(SessionCredential {
        session_id: session.id,
        user_id: user.id,
        expires_at: session.expires_at,
        is_platform_admin: user.is_platform_admin,
        personal_org_id: user.personal_org_id,
        memberships,
    }))
}

/// Whether an organization exists (a platform administrator may name any).
pub(crate) async fn org_exists(app: &App, org_id: &OrgId) -> Result<bool> {
    let n: i64 = with_conn!(app.db, c => organizations::table.find(org_id).count().get_result(c).await?);
    Ok(n > 0)
}

/// The user's role in the organization, if they are a member.
pub async fn role_in(app: &App, user: &UserId, org: &OrgId) -> Result<Option<Role>> {
    let role: Option<String> = with_conn!(app.db, c => {
        memberships::table
            .filter(memberships::user_id.eq(user))
            .filter(memberships::org_id.eq(org))
            .select(memberships::role)
            .first(c).await.optional()?
    });
    Ok(role.as_deref().and_then(Role::parse))
}

/// An organization's name (shown on the OAuth consent page as the app's developer).
pub async fn org_name(app: &App, org_id: &OrgId) -> Result<String> {
    let name: Option<String> = with_conn!(app.db, c => {
        organizations::table.find(org_id).select(organizations::name).first(c).await.optional()?
    });
    name.ok_or(Error::NotFound("organization"))
}

/// Users by id, for the DataLoader. Only ids the caller may see are asked for by resolvers.
pub async fn load_users(app: &App, ids: &[UserId]) -> Result<Vec<UserRow>> {
    Ok(with_conn!(app.db, c => users::table.filter(users::id.eq_any(ids)).select(UserRow::as_select()).load(c).await?))
}

/// The signed-in user, the user who created the key in use, or who authorized the app in use.
pub async fn viewer_user(app: &App, principal: &Principal) -> Result<Option<UserRow>> {
    let id = match &principal.actor {
        Actor::User { user_id, .. } => Some(user_id),
        Actor::ApiKey { created_by, .. } => created_by.as_ref(),
        Actor::OAuthApp { user_id, .. } => user_id.as_ref(),
    };
    let Some(id) = id else { return Ok(None) };
    Ok(load_users(app, std::slice::from_ref(id)).await?.into_iter().next())
}

/// Organizations the principal belongs to, with its role in each. A key sees only its own.
pub async fn list_orgs(app: &App, principal: &Principal) -> Result<Vec<(OrgRow, Option<Role>)>> {
    principal.require_scope("org:read")?;
    match principal.user_id() {
        Some(user_id) => {
            let rows: Vec<(OrgRow, String)> = with_conn!(app.db, c => {
                organizations::table
                    .inner_join(memberships::table)
                    .filter(memberships::user_id.eq(user_id))
                    .filter(organizations::deleted_at.is_null())
                    .order(organizations::id.asc())
                    .select((OrgRow::as_select(), memberships::role))
                    .load(c).await?
            });
            Ok(rows.into_iter().map(|(o, r)| (o, Role::parse(&r))).collect())
        }
        None => Ok(vec![(get_org(app, principal, &principal.org_id).await?, None)]),
    }
}

/// One organization the principal may see: its own, one it is a member of, or any for a platform
/// administrator. Anything else is NOT_FOUND.
pub async fn get_org(app: &App, principal: &Principal, org_id: &OrgId) -> Result<OrgRow> {
    principal.require_scope("org:read")?;
    let visible = if *org_id == principal.org_id {
        true
    } else if let Some(user_id) = principal.user_id() {
        principal.is_platform
            || {
                let n: i64 = with_conn!(app.db, c => {
                    memberships::table.filter(memberships::org_id.eq(org_id)).filter(memberships::user_id.eq(user_id)).count().get_result(c).await?
                });
                n > 0
            }
    } else {
        false
    };
    if !visible {
        return Err(Error::NotFound("organization"));
    }
    let row = with_conn!(app.db, c => {
        organizations::table.find(org_id).select(OrgRow::as_select()).first(c).await.optional()?
    })
    .ok_or(Error::NotFound("organization"))?;
    // A platform administrator looking at an organization of which they are not a member.
    if *org_id != principal.org_id
        && principal.is_platform_admin()
        && let Some(me) = principal.user_id()
        && role_in(app, me, org_id).await?.is_none()
    {
        crate::admin::service::record_access(app, principal, org_id, "organization", "service").await?;
    }
    Ok(row)
}

/// Organizations by id for the DataLoader (callers have checked visibility).
pub async fn load_orgs(app: &App, ids: &[OrgId]) -> Result<Vec<OrgRow>> {
    Ok(
        with_conn!(app.db, c => organizations::table.filter(organizations::id.eq_any(ids)).select(OrgRow::as_select()).load(c).await?),
    )
}

/// Creates an organization with the signed-in user as its OWNER. Their sessions see it at once.
pub async fn create_org(app: &App, principal: &Principal, name: &str) -> Result<OrgRow> {
    let Some(user_id) = principal.user_id().cloned() else {
        return Err(Error::forbidden("organizations are created by signed-in users, not by API keys"));
    };
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::bad_input("name", "must be 1 to 100 characters"));
    }
    let now = app.clock.now_ms();
    let org_id = OrgId::generate(now);
    let base: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let suffix = &org_id.as_str()[org_id.as_str().len() - 6..];
    let slug =
        if base.is_empty() { format!("org-{suffix}") } else { format!("{}-{suffix}", &base[..base.len().min(40)]) };
    let (org, event) = transaction!(app.db, c => {
        let org: OrgRow = diesel::insert_into(organizations::table)
            .values(NewOrg { id: &org_id, name, slug: &slug, is_personal: false, is_platform: false, created_at: now, updated_at: now })
            .returning(OrgRow::as_returning())
            .get_result(c).await?;
        crate::insert_default_subscription!(c, &org_id, now);
        diesel::insert_into(memberships::table)
            .values(MembershipRow { org_id: org_id.clone(), user_id: user_id.clone(), role: Role::Owner.as_str().into(), created_at: now })
            .execute(c).await?;
        crate::audit!(c, NewAudit::raw(app, &org_id, "user", user_id.as_str(), principal.ip, "org.created", "organization", org_id.as_str(), serde_json::json!({ "name": name })));
        let event = crate::outbox!(c, PendingEvent::new(app, &org_id, "org.created", serde_json::json!({ "organization": { "id": org_id, "name": name } })));
        Ok::<_, Error>((org, event))
    })?;
    // Cached sessions hold the user's memberships: drop them on every node.
    forget_user_sessions(app, std::slice::from_ref(&user_id)).await?;
    event.publish(app).await;
    Ok(org)
}

/// Drops the live sessions of these users from every node's credential cache, so the next request
/// reads their memberships (and state) again. Call after the change has committed.
pub async fn forget_user_sessions(app: &App, users: &[UserId]) -> Result<()> {
    if users.is_empty() {
        return Ok(());
    }
    let hashes: Vec<String> = with_conn!(app.db, c => {
        sessions::table
            .filter(sessions::user_id.eq_any(users))
            .filter(sessions::revoked_at.is_null())
            .select(sessions::token_hash)
            .load(c).await?
    });
    for token_hash in hashes {
        crate::auth::forget_session(app, token_hash).await;
    }
    Ok(())
}

/// Reads the organizations that may not act (suspended, or deleted — purged ones included) into
/// the per-node list.
pub async fn load_org_states(app: &App) -> Result<()> {
    use super::org_states::Denial;
    let rows: Vec<(OrgId, Option<i64>, Option<i64>)> = with_conn!(app.db, c => {
        organizations::table
            .filter(organizations::suspended_at.is_not_null().or(organizations::deleted_at.is_not_null()))
            .select((organizations::id, organizations::suspended_at, organizations::deleted_at))
            .load(c).await?
    });
    let all = rows
        .into_iter()
        .map(|(id, _, deleted)| (id.to_string(), if deleted.is_some() { Denial::Deleted } else { Denial::Suspended }))
        .collect();
    app.org_states.replace_all(all);
    Ok(())
}

/// Records an organization's new state on this node at once, then on every other node.
pub async fn publish_org_state(app: &App, org: &OrgId, state: Option<super::org_states::Denial>) {
    app.org_states.set(org.as_str(), state);
    app.bus.publish(crate::platform::bus::BusMessage::OrgStateChanged { org_id: org.to_string(), state }).await;
}
