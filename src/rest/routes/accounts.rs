//! REST routes of accounts: register, login, refresh, logout, the caller.

use axum::http::Method;

use super::*;

pub(super) fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        r(
            M::POST,
            "/auth/register",
            "Create an account and sign in",
            leak(format!(
                "mutation($input: RegisterInput!) {{ register(input: $input) {{ user {{ {USER} }} session {{ {SESSION} }} }} }}"
            )),
            "register",
            201,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/auth/login",
            "Sign in",
            leak(format!(
                "mutation($input: LoginInput!) {{ login(input: $input) {{ user {{ {USER} }} session {{ {SESSION} }} }} }}"
            )),
            "login",
            200,
            &[],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/auth/refresh",
            "Exchange a refresh token for a new session",
            leak(format!(
                "mutation($token: String!) {{ refreshSession(refreshToken: $token) {{ user {{ {USER} }} session {{ {SESSION} }} }} }}"
            )),
            "refreshSession",
            200,
            &[("refresh_token", "token")],
            Shape::AsIs,
        ),
        r(
            M::POST,
            "/auth/logout",
            "Revoke the current session",
            "mutation { logout }",
            "logout",
            204,
            &[],
            Shape::AsIs,
        ),
        r(
            M::GET,
            "/auth/user",
            "The caller",
            "query { viewer { id kind scopes role user { id email name isPlatformAdmin createdAt } organization { id name slug isPersonal createdAt } } }",
            "viewer",
            200,
            &[],
            Shape::AsIs,
        ),
    ]
}
