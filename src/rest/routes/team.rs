//! REST routes of teams: members and roles, invitations, and the account links mailed to users
//! (confirm an address, reset a password). The organization is the request's (`X-Organization-Id`
//! for a session).

use axum::http::Method;

use super::*;

pub(super) const MEMBER: &str = "userId name email role joinedAt";
pub(super) const EXPORT: &str = "id status createdAt finishedAt bytes downloadUrl expiresAt error";
pub(super) const INVITATION: &str =
    "id email role status invitedBy createdAt expiresAt lastSentAt sentCount acceptedAt acceptedBy revokedAt";

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
            &[],
            Shape::AsIs,
        ),
        r(
            M::PATCH,
            "/organization/members/{user_id}",
            "Give a member another role",
            leak(format!(
                "mutation($userId: ID!, $role: Role!) {{ changeMemberRole(userId: $userId, role: $role) {{ {MEMBER} }} }}"
            )),
            "changeMemberRole",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/organization/members/{user_id}",
            "Remove a member",
            "mutation($userId: ID!) { removeMember(userId: $userId) }",
            "removeMember",
            204,
            &[],
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/organization",
            "Delete the organization (OWNER; `?confirm=<slug>`); its data is purged after the export window",
            "mutation($confirm: String!) { deleteOrganization(confirm: $confirm) { id purgeAfter exportId } }",
            "deleteOrganization",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/organization/export",
            "Export the organization's data (a background job; poll the export for its download link)",
            leak(format!("mutation {{ exportOrganization {{ {EXPORT} }} }}")),
            "exportOrganization",
            202,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/organization/exports",
            "The organization's last 20 exports",
            leak(format!("query {{ organizationExports {{ {EXPORT} }} }}")),
            "organizationExports",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/organization/exports/{id}",
            "One export, with its download link when ready",
            leak(format!("query($id: ID!) {{ organizationExport(id: $id) {{ {EXPORT} }} }}")),
            "organizationExport",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/organization/leave",
            "Leave the organization",
            "mutation { leaveOrganization }",
            "leaveOrganization",
            204,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/organization/transfer",
            "Make another member the OWNER (you become ADMIN)",
            "mutation($userId: ID!) { transferOwnership(userId: $userId) }",
            "transferOwnership",
            204,
            &[],
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
            &[],
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
            &[],
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
            &[],
            Shape::AsIs,
        ),
        r(
            M::DELETE,
            "/organization/invitations/{id}",
            "Revoke an invitation",
            leak(format!("mutation($id: ID!) {{ revokeInvitation(id: $id) {{ {INVITATION} }} }}")),
            "revokeInvitation",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/invitations/accept",
            "Accept an invitation sent to your address",
            "mutation($token: String!) { acceptInvitation(token: $token) { id name slug isPersonal viewerRole } }",
            "acceptInvitation",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/auth/verify-email",
            "Confirm an address with the token mailed to it",
            leak(format!("mutation($token: String!) {{ verifyEmail(token: $token) {{ {USER} emailVerified }} }}")),
            "verifyEmail",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/auth/forgot-password",
            "Mail a password reset link (the answer is the same whether the account exists or not)",
            "mutation($email: String!) { requestPasswordReset(email: $email) }",
            "requestPasswordReset",
            202,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/auth/reset-password",
            "Set a new password with the token of a reset link (every session ends)",
            "mutation($token: String!, $password: String!) { resetPassword(token: $token, password: $password) }",
            "resetPassword",
            204,
            &[],
            Shape::AsIs,
        ),
    ]
}
