//! REST routes of teams: members and roles, invitations, and the account links mailed to users
//! (confirm an address, reset a password). The organization is the request's (`X-Organization-Id`
//! for a session).

use axum::http::Method;
use serde_json::{Value, json};

use super::*;
use crate::error::{Error, Result};
use crate::rest::RestInput;

pub(super) const MEMBER: &str = "userId name email role joinedAt";
pub(super) const EXPORT: &str = "id status createdAt finishedAt bytes downloadUrl expiresAt error";
pub(super) const INVITATION: &str =
    "id email role status invitedBy createdAt expiresAt lastSentAt sentCount acceptedAt acceptedBy revokedAt";

fn field<'a>(body: &'a Value, name: &str, rest: &str) -> Result<&'a Value> {
    body.get(name).ok_or_else(|| Error::bad_input(rest, "is required"))
}

fn change_role(i: &RestInput) -> Result<Value> {
    let body = i.body_object()?;
    Ok(json!({ "userId": i.path("userId"), "role": field(&body, "role", "role")? }))
}

fn user_path(i: &RestInput) -> Result<Value> {
    Ok(json!({ "userId": i.path("userId") }))
}

fn transfer(i: &RestInput) -> Result<Value> {
    let body = i.body_object()?;
    Ok(json!({ "userId": field(&body, "userId", "user_id")? }))
}

fn list_invitations(i: &RestInput) -> Result<Value> {
    let mut vars = page_args(i)?;
    vars["status"] = i.query("status").map(|s| s.to_ascii_uppercase()).into();
    Ok(vars)
}

fn token(i: &RestInput) -> Result<Value> {
    let body = i.body_object()?;
    Ok(json!({ "token": field(&body, "token", "token")? }))
}

fn email(i: &RestInput) -> Result<Value> {
    let body = i.body_object()?;
    Ok(json!({ "email": field(&body, "email", "email")? }))
}

fn confirm(i: &RestInput) -> Result<Value> {
    let body = i.body_object()?;
    Ok(json!({ "confirm": field(&body, "confirm", "confirm")? }))
}

fn reset(i: &RestInput) -> Result<Value> {
    let body = i.body_object()?;
    Ok(json!({ "token": field(&body, "token", "token")?, "password": field(&body, "password", "password")? }))
}

pub(super) fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        r(
            M::GET,
            "/organization/members",
            "The organization's members and their roles",
            leak(format!("query {{ members {{ {MEMBER} }} }}")),
            "members",
            200,
            no_vars,
            Shape::AsIs,
        ),
        r(
            M::PATCH,
            "/organization/members/{userId}",
            "Give a member another role",
            leak(format!(
                "mutation($userId: ID!, $role: Role!) {{ changeMemberRole(userId: $userId, role: $role) {{ {MEMBER} }} }}"
            )),
            "changeMemberRole",
            200,
            change_role,
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/organization/members/{userId}",
            "Remove a member",
            "mutation($userId: ID!) { removeMember(userId: $userId) }",
            "removeMember",
            204,
            user_path,
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/organization",
            "Delete the organization (OWNER; `{\"confirm\": \"<slug>\"}`); its data is purged after the export window",
            "mutation($confirm: String!) { deleteOrganization(confirm: $confirm) { id purgeAfter exportId } }",
            "deleteOrganization",
            200,
            confirm,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/organization/export",
            "Export the organization's data (a background job; poll the export for its download link)",
            leak(format!("mutation {{ exportOrganization {{ {EXPORT} }} }}")),
            "exportOrganization",
            202,
            no_vars,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/organization/exports",
            "The organization's last 20 exports",
            leak(format!("query {{ organizationExports {{ {EXPORT} }} }}")),
            "organizationExports",
            200,
            no_vars,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/organization/exports/{id}",
            "One export, with its download link when ready",
            leak(format!("query($id: ID!) {{ organizationExport(id: $id) {{ {EXPORT} }} }}")),
            "organizationExport",
            200,
            id_only,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/organization/leave",
            "Leave the organization",
            "mutation { leaveOrganization }",
            "leaveOrganization",
            204,
            no_vars,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/organization/transfer",
            "Make another member the OWNER (you become ADMIN)",
            "mutation($userId: ID!) { transferOwnership(userId: $userId) }",
            "transferOwnership",
            204,
            transfer,
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/organization/invitations",
            "The organization's invitations (newest first; `?status=pending`)",
            leak(format!(
                "query($first: Int, $after: String, $status: InvitationStatus) {{ invitations(first: $first, after: $after, status: $status) {{ totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {INVITATION} }} }} }} }}"
            )),
            "invitations",
            200,
            list_invitations,
            Shape::List,
        ),
        r(
            M::POST,
            "/organization/invitations",
            "Invite an address with a role (mails the link)",
            leak(format!(
                "mutation($input: InviteMemberInput!) {{ inviteMember(input: $input) {{ mailSent invitation {{ {INVITATION} }} }} }}"
            )),
            "inviteMember",
            201,
            body_input,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/organization/invitations/{id}/resend",
            "Mail an invitation again with a new link",
            leak(format!(
                "mutation($id: ID!) {{ resendInvitation(id: $id) {{ mailSent invitation {{ {INVITATION} }} }} }}"
            )),
            "resendInvitation",
            200,
            id_only,
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/organization/invitations/{id}",
            "Revoke an invitation",
            leak(format!("mutation($id: ID!) {{ revokeInvitation(id: $id) {{ {INVITATION} }} }}")),
            "revokeInvitation",
            200,
            id_only,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/invitations/accept",
            "Accept an invitation sent to your address",
            "mutation($token: String!) { acceptInvitation(token: $token) { id name slug isPersonal viewerRole } }",
            "acceptInvitation",
            200,
            token,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/auth/verify-email",
            "Confirm an address with the token mailed to it",
            leak(format!("mutation($token: String!) {{ verifyEmail(token: $token) {{ {USER} emailVerified }} }}")),
            "verifyEmail",
            200,
            token,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/auth/forgot-password",
            "Mail a password reset link (the answer is the same whether the account exists or not)",
            "mutation($email: String!) { requestPasswordReset(email: $email) }",
            "requestPasswordReset",
            202,
            email,
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/auth/reset-password",
            "Set a new password with the token of a reset link (every session ends)",
            "mutation($token: String!, $password: String!) { resetPassword(token: $token, password: $password) }",
            "resetPassword",
            204,
            reset,
            Shape::AsIs,
        ),
    ]
}
