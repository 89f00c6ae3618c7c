//! Invitations: an organization invites an email address with a role; the mailed token (a keyed
//! hash in the database, single use, `GANTRY_INVITATION_TTL_DAYS`) makes whoever holds that
//! address a member — a signed-in user whose email matches, or someone signing up through the link.
//!
//! Managing invitations needs `org:write` (OWNER and ADMIN; inviting an OWNER needs an OWNER). The
//! plan caps members, and pending invitations count against the cap. One pending invitation per
//! organization and address (a partial unique index); an expired one is replaced by a new invite.
//! Acceptance is one conditional update, so a token never makes two members.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::model::{InvitationRow, InvitationState, UserRow};
use super::service::{forget_user_sessions, normalise_email};
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::error::{Error, Result};
use crate::events::{NewAudit, PendingEvent};
use crate::pagination::{Page, PageRequest};
use crate::platform::crypto;
use crate::platform::db::schema::{invitations, memberships, organizations, users};
use crate::platform::ids::{InvitationId, OrgId, UserId};
use crate::{keyset_page, transaction, with_conn};

pub const TOKEN_PREFIX: &str = "gki_";
const TOKEN_DOMAIN: &str = "invitation";

fn token_hash(app: &App, token: &str) -> String {
    app.secret.keyed_hash(TOKEN_DOMAIN, token)
}

fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", crypto::random_base62(43))
}

/// An invitation created or resent, and whether its mail went out.
pub struct Sent {
    pub invitation: InvitationRow,
    pub mail_sent: bool,
}

fn event_data(inv: &InvitationRow) -> serde_json::Value {
    serde_json::json!({ "invitation": {
        "id": inv.id, "email": inv.email, "role": inv.role,
        "expiresAt": crate::platform::clock::rfc3339(inv.expires_at),
    } })
}

/// Inviting, resending and revoking an OWNER's invitation is for owners.
fn check_role_grant(principal: &Principal, role: Role) -> Result<()> {
    principal.require_scope("org:write")?;
    if role == Role::Owner {
        principal.require_owner("invite owners")?;
    }
    Ok(())
}

/// The caller as the invitation mail names them.
async fn inviter_name(app: &App, principal: &Principal) -> Result<String> {
    Ok(match super::service::viewer_user(app, principal).await? {
        Some(u) => u.name,
        None => "An administrator".into(),
    })
}

/// Members plus pending invitations must stay within the plan's `max_members`.
macro_rules! check_member_cap {
    ($c:expr, $org:expr, $now:expr, $max:expr) => {
        if let Some(max) = $max {
            let members: i64 = memberships::table.filter(memberships::org_id.eq($org)).count().get_result($c).await?;
            let pending: i64 = invitations::table
                .filter(invitations::org_id.eq($org))
                .filter(invitations::accepted_at.is_null())
                .filter(invitations::revoked_at.is_null())
                .filter(invitations::expires_at.gt($now))
                .count()
                .get_result($c)
                .await?;
            if members + pending >= max {
                return Err(Error::forbidden(format!(
                    "your plan allows {max} members, pending invitations included; remove a member, revoke an invitation or change plans"
                )));
            }
        }
    };
}

/// Invites `email` with `role` and mails the link.
pub async fn invite(app: &App, principal: &Principal, email: &str, role: Role) -> Result<Sent> {
    check_role_grant(principal, role)?;
    let email = normalise_email(email)?;
    let org = principal.org_id.clone();
    let max = crate::limits::service::plan_for_org(app, &org).await?.max_members;
    let now = app.clock.now_ms();
    let token = new_token();
    let hash = token_hash(app, &token);
    let pg = app.db.is_postgres();
    let row = InvitationRow {
        id: InvitationId::generate(now),
        org_id: org.clone(),
        email: email.clone(),
        role: role.as_str().into(),
        token_hash: hash,
        invited_by_type: principal.actor_type().into(),
        invited_by: principal.actor_id(),
        created_at: now,
        expires_at: now + app.config.invitation_ttl_days * 86_400_000,
        sent_count: 1,
        last_sent_at: now,
        accepted_at: None,
        accepted_by: None,
        revoked_at: None,
    };
    let event = transaction!(app.db, c => {
        // One membership change of an organization at a time: caps and last-owner rules hold.
        crate::lock_row!(c, pg, "organizations", org.as_str());
        // The platform organization's keys are service keys: nobody joins it by invitation
        // (platform administrators are made with grantPlatformAdmin).
        let platform: bool = organizations::table.find(&org).select(organizations::is_platform).first(c).await?;
        if platform {
            return Err(Error::forbidden(
                "nobody joins the platform organization by invitation (its keys act across organizations); make a platform administrator with grantPlatformAdmin, or invite them to another organization",
            ));
        }
        let member: i64 = memberships::table
            .inner_join(users::table)
            .filter(memberships::org_id.eq(&org))
            .filter(users::email.eq(&email))
            .count().get_result(c).await?;
        if member > 0 {
            return Err(Error::Conflict(format!("{email} is already a member of this organization")));
        }
        // An expired invitation to the same address makes way for the new one.
        diesel::update(invitations::table
                .filter(invitations::org_id.eq(&org))
                .filter(invitations::email.eq(&email))
                .filter(invitations::accepted_at.is_null())
                .filter(invitations::revoked_at.is_null())
                .filter(invitations::expires_at.le(now)))
            .set(invitations::revoked_at.eq(now))
            .execute(c).await?;
        let pending: i64 = invitations::table
            .filter(invitations::org_id.eq(&org))
            .filter(invitations::email.eq(&email))
            .filter(invitations::accepted_at.is_null())
            .filter(invitations::revoked_at.is_null())
            .count().get_result(c).await?;
        if pending > 0 {
            return Err(Error::Conflict(format!("{email} is already invited; resend the invitation or revoke it first")));
        }
        check_member_cap!(c, &org, now, max);
        diesel::insert_into(invitations::table).values(&row).execute(c).await?;
        let event = crate::outbox!(c,
            PendingEvent::new(app, &org, "member.invited", event_data(&row)),
            NewAudit::by(app, principal, "member.invited", "invitation", row.id.as_str(), serde_json::json!({ "email": email, "role": role.as_str() })));
        Ok::<_, Error>(event)
    })?;
    event.publish(app).await;
    let mail_sent = mail(app, principal, &row, &token).await;
    Ok(Sent { invitation: row, mail_sent })
}

async fn mail(app: &App, principal: &Principal, inv: &InvitationRow, token: &str) -> bool {
    let inviter = inviter_name(app, principal).await.unwrap_or_else(|_| "An administrator".into());
    let org_name = super::service::org_name(app, &inv.org_id).await.unwrap_or_default();
    let message = super::mails::invitation(app, &inv.email, &inviter, &org_name, &inv.role, token, inv.expires_at);
    app.mailer.send(&message).await.is_ok()
}

async fn find(app: &App, principal: &Principal, id: &str) -> Result<InvitationRow> {
    crate::find_in_org!(app.db, principal.org_id.as_str(), invitations, InvitationRow, InvitationId, id, "invitation")
}

/// Mails a pending invitation again with a new token (the old link stops working) and a new expiry.
pub async fn resend(app: &App, principal: &Principal, id: &str) -> Result<Sent> {
    principal.require_scope("org:write")?;
    let current = find(app, principal, id).await?;
    check_role_grant(principal, Role::parse(&current.role).unwrap_or(Role::Viewer))?;
    let now = app.clock.now_ms();
    if matches!(current.state(now), InvitationState::Accepted | InvitationState::Revoked) {
        return Err(Error::Conflict("this invitation was already accepted or revoked; send a new one".into()));
    }
    let token = new_token();
    let hash = token_hash(app, &token);
    let expires = now + app.config.invitation_ttl_days * 86_400_000;
    // An expired invitation sent again takes a place again: within the plan's cap.
    let max = crate::limits::service::plan_for_org(app, &current.org_id).await?.max_members;
    let revived = current.state(now) == InvitationState::Expired;
    let pg = app.db.is_postgres();
    let org = current.org_id.clone();
    let row = transaction!(app.db, c => {
        crate::lock_row!(c, pg, "organizations", org.as_str());
        if revived {
            check_member_cap!(c, &org, now, max);
        }
        let row: Option<InvitationRow> = diesel::update(invitations::table
                .find(&current.id)
                .filter(invitations::accepted_at.is_null())
                .filter(invitations::revoked_at.is_null()))
            .set((
                invitations::token_hash.eq(&hash),
                invitations::expires_at.eq(expires),
                invitations::sent_count.eq(invitations::sent_count + 1),
                invitations::last_sent_at.eq(now),
            ))
            .returning(InvitationRow::as_returning())
            .get_result(c).await.optional()?;
        let row = row.ok_or_else(|| Error::Conflict("this invitation was accepted or revoked meanwhile".into()))?;
        crate::audit!(c, NewAudit::by(app, principal, "member.invitation_resent", "invitation", row.id.as_str(), serde_json::json!({ "email": row.email })));
        Ok::<_, Error>(row)
    })?;
    let mail_sent = mail(app, principal, &row, &token).await;
    Ok(Sent { invitation: row, mail_sent })
}

/// Revokes a pending invitation: its link stops working.
pub async fn revoke(app: &App, principal: &Principal, id: &str) -> Result<InvitationRow> {
    principal.require_scope("org:write")?;
    let current = find(app, principal, id).await?;
    check_role_grant(principal, Role::parse(&current.role).unwrap_or(Role::Viewer))?;
    let now = app.clock.now_ms();
    let (row, event) = transaction!(app.db, c => {
        let row: Option<InvitationRow> = diesel::update(invitations::table
                .find(&current.id)
                .filter(invitations::accepted_at.is_null())
                .filter(invitations::revoked_at.is_null()))
            .set(invitations::revoked_at.eq(now))
            .returning(InvitationRow::as_returning())
            .get_result(c).await.optional()?;
        let row = row.ok_or_else(|| Error::Conflict("this invitation was already accepted or revoked".into()))?;
        let event = crate::outbox!(c,
            PendingEvent::new(app, &row.org_id, "member.invitation_revoked", event_data(&row)),
            NewAudit::by(app, principal, "member.invitation_revoked", "invitation", row.id.as_str(), serde_json::json!({ "email": row.email })));
        Ok::<_, Error>((row, event))
    })?;
    event.publish(app).await;
    Ok(row)
}

/// Filter of the invitations list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

/// The organization's invitations, newest first (`org:write`: they name addresses and roles).
pub async fn list(
    app: &App,
    principal: &Principal,
    status: Option<StatusFilter>,
    page: &PageRequest,
) -> Result<Page<InvitationRow>> {
    principal.require_scope("org:write")?;
    let org = &principal.org_id;
    let now = app.clock.now_ms();
    macro_rules! base {
        () => {{
            let mut q = invitations::table.filter(invitations::org_id.eq(org)).into_boxed();
            q = match status {
                None => q,
                Some(StatusFilter::Accepted) => q.filter(invitations::accepted_at.is_not_null()),
                Some(StatusFilter::Revoked) => {
                    q.filter(invitations::accepted_at.is_null()).filter(invitations::revoked_at.is_not_null())
                }
                Some(StatusFilter::Pending) => q
                    .filter(invitations::accepted_at.is_null())
                    .filter(invitations::revoked_at.is_null())
                    .filter(invitations::expires_at.gt(now)),
                Some(StatusFilter::Expired) => q
                    .filter(invitations::accepted_at.is_null())
                    .filter(invitations::revoked_at.is_null())
                    .filter(invitations::expires_at.le(now)),
            };
            q
        }};
    }
    let (rows, total) = with_conn!(app.db, c => keyset_page!(c, base!(), invitations::id, InvitationRow, page));
    Ok(Page::from_rows(rows, page, total))
}

/// What an invitation link shows before it is accepted (anyone holding the token may look).
pub struct Preview {
    pub invitation: InvitationRow,
    pub organization_name: String,
    /// Whether an account with the invited address exists (sign in) or not (sign up).
    pub account_exists: bool,
}

/// The pending invitation a token names; anything else (unknown, used, revoked, expired) is the
/// same NOT_FOUND.
pub async fn preview(app: &App, token: &str) -> Result<Preview> {
    let inv = pending_by_token(app, token).await?;
    let organization_name = super::service::org_name(app, &inv.org_id).await?;
    let n: i64 = with_conn!(app.db, c => {
        users::table.filter(users::email.eq(&inv.email)).filter(users::deleted_at.is_null()).count().get_result(c).await?
    });
    Ok(Preview { invitation: inv, organization_name, account_exists: n > 0 })
}

async fn pending_by_token(app: &App, token: &str) -> Result<InvitationRow> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 100 {
        return Err(Error::NotFound("invitation"));
    }
    let hash = token_hash(app, token);
    let now = app.clock.now_ms();
    let inv: Option<InvitationRow> = with_conn!(app.db, c => {
        invitations::table.filter(invitations::token_hash.eq(&hash)).select(InvitationRow::as_select()).first(c).await.optional()?
    });
    inv.filter(|i| i.state(now) == InvitationState::Pending).ok_or(Error::NotFound("invitation"))
}

/// Inside a transaction: takes the invitation the token names for `user` (single use: a
/// conditional update), adds the membership, marks the address verified (the token came to it)
/// and writes `member.joined`. Evaluates to `Result<(InvitationRow, PendingEvent)>`.
#[macro_export]
macro_rules! take_invitation {
    ($c:expr, $app:expr, $hash:expr, $user:expr, $now:expr) => {{
        use $crate::platform::db::schema::{invitations, memberships, organizations, users};
        let user: &$crate::accounts::model::UserRow = $user;
        let inv: Option<$crate::accounts::model::InvitationRow> = diesel::update(
            invitations::table
                .filter(invitations::token_hash.eq($hash))
                .filter(invitations::accepted_at.is_null())
                .filter(invitations::revoked_at.is_null())
                .filter(invitations::expires_at.gt($now)),
        )
        .set((invitations::accepted_at.eq($now), invitations::accepted_by.eq(&user.id)))
        .returning($crate::accounts::model::InvitationRow::as_returning())
        .get_result($c)
        .await
        .optional()?;
        let inv = inv.ok_or($crate::error::Error::NotFound("invitation"))?;
        if inv.email != user.email {
            return Err($crate::error::Error::forbidden(
                "this invitation was sent to another email address: sign in with that address to accept it",
            ));
        }
        let live: i64 = organizations::table
            .find(&inv.org_id)
            .filter(organizations::deleted_at.is_null())
            .filter(organizations::is_platform.eq(false))
            .count()
            .get_result($c)
            .await?;
        if live == 0 {
            return Err($crate::error::Error::NotFound("invitation"));
        }
        let already: i64 = memberships::table
            .filter(memberships::org_id.eq(&inv.org_id))
            .filter(memberships::user_id.eq(&user.id))
            .count()
            .get_result($c)
            .await?;
        if already > 0 {
            return Err($crate::error::Error::Conflict("you are already a member of this organization".into()));
        }
        diesel::insert_into(memberships::table)
            .values($crate::accounts::model::MembershipRow {
                org_id: inv.org_id.clone(),
                user_id: user.id.clone(),
                role: inv.role.clone(),
                created_at: $now,
            })
            .execute($c)
            .await?;
        diesel::update(users::table.find(&user.id).filter(users::email_verified_at.is_null()))
            .set(users::email_verified_at.eq($now))
            .execute($c)
            .await?;
        let data = serde_json::json!({
            "member": { "userId": user.id, "email": user.email, "role": inv.role },
            "invitationId": inv.id,
        });
        let event = $crate::outbox!(
            $c,
            $crate::events::PendingEvent::new($app, &inv.org_id, "member.joined", data.clone()),
            $crate::events::NewAudit::raw(
                $app,
                &inv.org_id,
                "user",
                user.id.as_str(),
                None,
                "member.joined",
                "user",
                user.id.as_str(),
                data
            )
        );
        Ok::<_, $crate::error::Error>((inv, event))
    }};
}

/// Hashes an invitation token for [`take_invitation!`]; a token of another shape is NOT_FOUND.
pub fn hash_for_accept(app: &App, token: &str) -> Result<String> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 100 {
        return Err(Error::NotFound("invitation"));
    }
    Ok(token_hash(app, token))
}

/// The signed-in user accepts an invitation sent to their address; their sessions see the new
/// organization at once. Returns the invitation and its organization.
pub async fn accept(app: &App, principal: &Principal, token: &str) -> Result<(InvitationRow, OrgId)> {
    let user_id: UserId =
        principal.user_id().cloned().ok_or_else(|| Error::forbidden("invitations are accepted by signed-in users"))?;
    let hash = hash_for_accept(app, token)?;
    let now = app.clock.now_ms();
    let (inv, event) = transaction!(app.db, c => {
        let user: UserRow = users::table.find(&user_id).select(UserRow::as_select()).first(c).await?;
        take_invitation!(c, app, &hash, &user, now)
    })?;
    forget_user_sessions(app, std::slice::from_ref(&user_id)).await?;
    event.publish(app).await;
    let org = inv.org_id.clone();
    Ok((inv, org))
}
