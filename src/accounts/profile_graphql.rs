//! GraphQL of the signed-in user's own account: `sessions`, `revokeSession`, `changePassword`,
//! `updateProfile` (a user session only — see [`super::profile`]).

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use super::graphql::User;
use super::profile;
use crate::graphql::context::{Authenticated, ContextExt};
use crate::graphql::scalars::DateTime;

/// A sign-in session of the user (a browser, the console, a script that logged in).
#[derive(SimpleObject)]
pub struct UserSession {
    /// Global id (`ses_…`).
    pub id: ID,
    /// Whether this request is made with it.
    pub current: bool,
    /// When it was opened (sign-in or refresh).
    pub created_at: DateTime,
    /// When its access token stops working (a refresh opens a new session).
    pub expires_at: DateTime,
    /// When its refresh token stops working.
    pub refresh_expires_at: DateTime,
}

/// A new password, given with the current one.
#[derive(InputObject)]
pub struct ChangePasswordInput {
    /// The account's password now.
    pub current_password: String,
    /// The new password, 8 to 128 characters.
    pub new_password: String,
}

/// What changing the password did.
#[derive(SimpleObject)]
pub struct ChangePasswordPayload {
    /// The user's other sessions that ended (the one that made the change goes on).
    pub sessions_revoked: i32,
}

/// The user's own details.
#[derive(InputObject)]
pub struct UpdateProfileInput {
    /// The name shown to teammates and on invoices, 1 to 100 characters.
    pub name: String,
}

#[derive(Default)]
pub struct ProfileQuery;

#[Object]
impl ProfileQuery {
    /// The signed-in user's open sessions, newest first: at most 100, always including the one of
    /// this request (marked `current`; listed last when it is older than the 99 others). Needs a
    /// user session (not an API key or an app).
    #[graphql(guard = "Authenticated")]
    async fn sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<UserSession>> {
        let (rows, current) = profile::sessions(ctx.app(), ctx.principal()?).await?;
        Ok(rows
            .into_iter()
            .map(|s| UserSession {
                current: s.id == current,
                id: ID(s.id.to_string()),
                created_at: s.created_at.into(),
                expires_at: s.expires_at.into(),
                refresh_expires_at: s.refresh_expires_at.into(),
            })
            .collect())
    }
}

#[derive(Default)]
pub struct ProfileMutation;

#[Object]
impl ProfileMutation {
    /// Ends one of the signed-in user's sessions: its token and refresh token stop working at
    /// once on every node. Revoking the current session is signing out.
    #[graphql(guard = "Authenticated")]
    async fn revoke_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The session (`ses_…`).")] id: ID,
    ) -> async_graphql::Result<bool> {
        profile::revoke_session(ctx.app(), ctx.principal()?, &id).await?;
        Ok(true)
    }

    /// Sets a new password after checking the current one; every other session of the user
    /// ends, the one making the change goes on, and reset links mailed before are used up. At
    /// most 10 attempts an hour per user, right or wrong (then `RATE_LIMITED`, window
    /// `password_changes`, even for the right password).
    #[graphql(guard = "Authenticated")]
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The current password and the new one.")] input: ChangePasswordInput,
    ) -> async_graphql::Result<ChangePasswordPayload> {
        let n =
            profile::change_password(ctx.app(), ctx.principal()?, &input.current_password, &input.new_password).await?;
        Ok(ChangePasswordPayload { sessions_revoked: i32::try_from(n).unwrap_or(i32::MAX) })
    }

    /// Changes the signed-in user's own details.
    #[graphql(guard = "Authenticated")]
    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The details to change.")] input: UpdateProfileInput,
    ) -> async_graphql::Result<User> {
        Ok(User(profile::update_profile(ctx.app(), ctx.principal()?, &input.name).await?))
    }
}
