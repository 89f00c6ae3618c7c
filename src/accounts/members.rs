//! Members of an organization and their roles: list, change a role, remove (or leave), transfer
//! ownership. The matrix is in [`Role`]: managing members needs `org:write` (OWNER, ADMIN), and
//! anything that makes, changes or removes an OWNER needs a signed-in OWNER. The last OWNER can
//! neither leave nor be demoted or removed. Every change of an organization's memberships locks
//! its row (PostgreSQL; SQLite has one writer), so two changes at once cannot leave it without an
//! owner; the affected users' cached sessions are dropped on every node.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::model::{MembershipRow, UserRow};
use super::service::forget_user_sessions;
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::error::{Error, Result};
use crate::events::{NewAudit, PendingEvent};
use crate::platform::db::schema::{memberships, oauth_tokens, users};
use crate::platform::ids::UserId;
use crate::{transaction, with_conn};

/// The organization's members with their accounts, oldest first (`org:read`: every role).
pub async fn list(app: &App, principal: &Principal) -> Result<Vec<(MembershipRow, UserRow)>> {
    principal.require_scope("org:read")?;
    Ok(with_conn!(app.db, c => {
        memberships::table
            .inner_join(users::table)
            .filter(memberships::org_id.eq(&principal.org_id))
            .order((memberships::created_at.asc(), memberships::user_id.asc()))
            .select((MembershipRow::as_select(), UserRow::as_select()))
            .load(c).await?
    }))
}

fn parse_user(id: &str) -> Result<UserId> {
    id.parse().map_err(|_| Error::NotFound("member"))
}

fn member_data(user: &UserId, email: &str, role: &str) -> serde_json::Value {
    serde_json::json!({ "member": { "userId": user, "email": email, "role": role } })
}

/// Inside a transaction: the member's row and account, or NOT_FOUND.
macro_rules! member {
    ($c:expr, $org:expr, $user:expr) => {{
        let found: Option<(MembershipRow, UserRow)> = memberships::table
            .inner_join(users::table)
            .filter(memberships::org_id.eq($org))
            .filter(memberships::user_id.eq($user))
            .select((MembershipRow::as_select(), UserRow::as_select()))
            .first($c)
            .await
            .optional()?;
        found.ok_or(Error::NotFound("member"))?
    }};
}

/// Inside a transaction: revokes the OAuth tokens apps hold on `$user`'s consent in `$org` (the
/// user lost the role that granted them). Evaluates to their hashes, to drop from every node's cache.
macro_rules! revoke_consents {
    ($c:expr, $org:expr, $user:expr, $now:expr) => {{
        let hashes: Vec<String> = diesel::update(
            oauth_tokens::table
                .filter(oauth_tokens::org_id.eq($org))
                .filter(oauth_tokens::user_id.eq($user))
                .filter(oauth_tokens::revoked_at.is_null()),
        )
        .set(oauth_tokens::revoked_at.eq($now))
        .returning(oauth_tokens::token_hash)
        .get_results($c)
        .await?;
        hashes
    }};
}

/// Inside a transaction: the caller's own membership must still be OWNER (not only in the cached
/// session: a concurrent change may have taken it).
macro_rules! still_owner {
    ($c:expr, $org:expr, $principal:expr, $what:expr) => {{
        $principal.require_owner($what)?;
        let me = $principal.user_id().ok_or_else(|| Error::forbidden("an OWNER is a signed-in user"))?;
        let role: Option<String> = memberships::table
            .filter(memberships::org_id.eq($org))
            .filter(memberships::user_id.eq(me))
            .select(memberships::role)
            .first($c)
            .await
            .optional()?;
        if role.as_deref() != Some(Role::Owner.as_str()) {
            return Err(Error::forbidden(format!("only an OWNER of the organization may {}", $what)));
        }
    }};
}

/// Inside a transaction: refuses when the organization has no OWNER but `$user`.
macro_rules! keep_an_owner {
    ($c:expr, $org:expr, $user:expr, $what:expr) => {{
        let others: i64 = memberships::table
            .filter(memberships::org_id.eq($org))
            .filter(memberships::role.eq(Role::Owner.as_str()))
            .filter(memberships::user_id.ne($user))
            .count()
            .get_result($c)
            .await?;
        if others == 0 {
            return Err(Error::Conflict(format!(
                "{} the last OWNER of this organization: make another member OWNER first (transferOwnership)",
                $what
            )));
        }
    }};
}

/// Gives a member another role.
pub async fn change_role(app: &App, principal: &Principal, user: &str, role: Role) -> Result<MembershipRow> {
    principal.require_scope("org:write")?;
    let user = parse_user(user)?;
    let org = principal.org_id.clone();
    let pg = app.db.is_postgres();
    let row = transaction!(app.db, c => {
        crate::lock_row!(c, pg, "organizations", org.as_str());
        let (current, account) = member!(c, &org, &user);
        let from = Role::parse(&current.role).unwrap_or(Role::Viewer);
        if from == Role::Owner || role == Role::Owner {
            still_owner!(c, &org, principal, "make, demote or change an OWNER");
        }
        if from == Role::Owner && role != Role::Owner {
            keep_an_owner!(c, &org, &user, "this member is");
        }
        // A demotion ends what apps hold on the member's consent.
        let lost = from.scopes().iter().any(|s| !crate::auth::scopes_allow(&role.scopes(), s));
        let tokens = if lost { revoke_consents!(c, &org, &user, app.clock.now_ms()) } else { Vec::new() };
        let row: MembershipRow = diesel::update(memberships::table.filter(memberships::org_id.eq(&org)).filter(memberships::user_id.eq(&user)))
            .set(memberships::role.eq(role.as_str()))
            .returning(MembershipRow::as_returning())
            .get_result(c).await?;
        let mut data = member_data(&user, &account.email, role.as_str());
        data["previousRole"] = from.as_str().into();
        let event = crate::outbox!(c,
            PendingEvent::new(app, &org, "member.role_changed", data.clone()),
            NewAudit::by(app, principal, "member.role_changed", "user", user.as_str(), data));
        Ok::<_, Error>((row, event, tokens))
    })?;
    let (row, event, tokens) = (row.0, row.1, row.2);
    forget_user_sessions(app, std::slice::from_ref(&user)).await?;
    crate::auth::forget_tokens(app, tokens).await;
    event.publish(app).await;
    Ok(row)
}

/// Removes a member; a user may always remove themselves (leave) but for the last OWNER.
pub async fn remove(app: &App, principal: &Principal, user: &str) -> Result<()> {
    let user = parse_user(user)?;
    let leaving = principal.user_id() == Some(&user);
    if leaving {
        principal.require_scope("org:read")?;
    } else {
        principal.require_scope("org:write")?;
    }
    let org = principal.org_id.clone();
    let pg = app.db.is_postgres();
    let event = transaction!(app.db, c => {
        crate::lock_row!(c, pg, "organizations", org.as_str());
        let (current, account) = member!(c, &org, &user);
        if current.role == Role::Owner.as_str() {
            if !leaving {
                still_owner!(c, &org, principal, "remove an OWNER");
            }
            keep_an_owner!(c, &org, &user, if leaving { "you are" } else { "this member is" });
        }
        diesel::delete(memberships::table.filter(memberships::org_id.eq(&org)).filter(memberships::user_id.eq(&user))).execute(c).await?;
        let tokens = revoke_consents!(c, &org, &user, app.clock.now_ms());
        let mut data = member_data(&user, &account.email, &current.role);
        data["left"] = leaving.into();
        let event = crate::outbox!(c,
            PendingEvent::new(app, &org, "member.removed", data.clone()),
            NewAudit::by(app, principal, if leaving { "member.left" } else { "member.removed" }, "user", user.as_str(), data));
        Ok::<_, Error>((event, tokens))
    })?;
    let (event, tokens) = event;
    forget_user_sessions(app, std::slice::from_ref(&user)).await?;
    crate::auth::forget_tokens(app, tokens).await;
    event.publish(app).await;
    Ok(())
}

/// Makes another member the OWNER; the caller (an OWNER) becomes ADMIN.
pub async fn transfer_ownership(app: &App, principal: &Principal, to: &str) -> Result<()> {
    principal.require_owner("transfer ownership")?;
    let to = parse_user(to)?;
    let me = principal.user_id().cloned().ok_or_else(|| Error::forbidden("ownership is transferred by its OWNER"))?;
    if to == me {
        return Err(Error::bad_input("userId", "you are already an OWNER; name another member"));
    }
    let org = principal.org_id.clone();
    let pg = app.db.is_postgres();
    let events = transaction!(app.db, c => {
        crate::lock_row!(c, pg, "organizations", org.as_str());
        still_owner!(c, &org, principal, "transfer ownership");
        let (target, account) = member!(c, &org, &to);
        let (_, mine) = member!(c, &org, &me);
        let mut events = Vec::new();
        for (user, email, from, role) in [
            (&to, &account.email, target.role.as_str(), Role::Owner),
            (&me, &mine.email, Role::Owner.as_str(), Role::Admin),
        ] {
            diesel::update(memberships::table.filter(memberships::org_id.eq(&org)).filter(memberships::user_id.eq(user)))
                .set(memberships::role.eq(role.as_str()))
                .execute(c).await?;
            let mut data = member_data(user, email, role.as_str());
            data["previousRole"] = from.into();
            events.push(crate::outbox!(c, PendingEvent::new(app, &org, "member.role_changed", data)));
        }
        crate::audit!(c, NewAudit::by(app, principal, "org.ownership_transferred", "user", to.as_str(), serde_json::json!({ "from": me, "to": to })));
        Ok::<_, Error>(events)
    })?;
    forget_user_sessions(app, &[to, me]).await?;
    for e in events {
        e.publish(app).await;
    }
    Ok(())
}
