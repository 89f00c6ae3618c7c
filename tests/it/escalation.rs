//! Ways around the role matrix that must stay closed: an app acting as itself, rolling a broader
//! key, joining the platform organization, an app keeping what a demoted member consented to.

use serde_json::{Value, json};

use crate::common::{Session, TestApp, backends, code};
use crate::smtp::SmtpServer;
use crate::teams::gql_in;

/// A team ("Acme") with its OWNER and a MEMBER who joined by invitation.
async fn team(t: &TestApp, smtp: &SmtpServer) -> (Session, Session, String) {
    let owner = t.register("owner@example.com").await;
    let r = t.gql_ok(Some(&owner.token), "mutation { createOrganization(name: \"Acme\") { id } }", json!({})).await;
    let org = r["createOrganization"]["id"].as_str().unwrap().to_string();
    let r = gql_in(
        t,
        &owner.token,
        &org,
        "mutation { inviteMember(input: {email: \"member@example.com\", role: MEMBER}) { mailSent } }",
        json!({}),
    )
    .await;
    assert_eq!(r["data"]["inviteMember"]["mailSent"], true, "{r}");
    let token = smtp.nth("member@example.com", 1).await.token();
    let r = t
        .gql_ok(
            None,
            "mutation($t: String!) { register(input: {email: \"member@example.com\", password: \"correct horse battery\", invitationToken: $t}) { user { id personalOrganizationId } session { token refreshToken } } }",
            json!({ "t": token }),
        )
        .await;
    let member = Session {
        token: r["register"]["session"]["token"].as_str().unwrap().into(),
        refresh_token: r["register"]["session"]["refreshToken"].as_str().unwrap().into(),
        user_id: r["register"]["user"]["id"].as_str().unwrap().into(),
        org_id: r["register"]["user"]["personalOrganizationId"].as_str().unwrap().into(),
    };
    (owner, member, org)
}

async fn token_form(t: &TestApp, id: &str, secret: &str, form: &[(&str, &str)]) -> Value {
    t.http
        .post(t.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_matrix_has_no_side_doors() {
    for backend in backends() {
        let smtp = SmtpServer::start().await;
        let url = smtp.url();
        let t = TestApp::with_config(backend, move |c| c.smtp_url = Some(url)).await;
        let admin = t.register("admin@example.com").await;
        t.lift_starter_limits(&admin.token).await;
        let (owner, member, org) = team(&t, &smtp).await;

        // An app a MEMBER creates may request management scopes of the organizations that install
        // it, but acting as itself on its own organization it never manages members or billing.
        let r = gql_in(
            &t,
            &member.token,
            &org,
            "mutation { createApp(input: {name: \"Side door\", description: \"d\", category: ANALYTICS, requestedScopes: [\"keys:read\", \"org:write\", \"billing:write\"], redirectUris: [\"https://side.example.com/cb\"]}) { clientSecret app { id } } }",
            json!({}),
        )
        .await;
        let app_id = r["data"]["createApp"]["app"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
        let secret = r["data"]["createApp"]["clientSecret"].as_str().unwrap().to_string();
        let tokens = token_form(&t, &app_id, &secret, &[("grant_type", "client_credentials")]).await;
        assert_eq!(tokens["scope"], "keys:read", "[{backend:?}] {tokens}");
        let itself = tokens["access_token"].as_str().unwrap().to_string();
        let promote = "mutation($u: ID!) { changeMemberRole(userId: $u, role: ADMIN) { role } }";
        assert_eq!(code(&t.gql(Some(&itself), promote, json!({ "u": member.user_id })).await), "FORBIDDEN");
        let refused =
            token_form(&t, &app_id, &secret, &[("grant_type", "client_credentials"), ("scope", "org:write")]).await;
        assert_eq!(refused["error"], "invalid_scope", "{refused}");

        // A MEMBER cannot roll an OWNER's key broader than their own scopes (its secret would be
        // theirs).
        let r = gql_in(
            &t,
            &owner.token,
            &org,
            "mutation { createApiKey(input: {name: \"owner\", scopes: [\"*\"]}) { apiKey { id } } }",
            json!({}),
        )
        .await;
        let owners_key = r["data"]["createApiKey"]["apiKey"]["id"].as_str().unwrap().to_string();
        let roll = "mutation($id: ID!) { rollApiKey(id: $id) { secret } }";
        let r = gql_in(&t, &member.token, &org, roll, json!({ "id": owners_key })).await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
        let r = gql_in(&t, &owner.token, &org, roll, json!({ "id": owners_key })).await;
        assert!(r["data"]["rollApiKey"]["secret"].is_string(), "its owner may: {r}");

        // Nobody joins the platform organization by invitation: its keys are service keys.
        let r = t
            .gql(
                Some(&admin.token),
                "mutation { inviteMember(input: {email: \"colleague@example.com\", role: MEMBER}) { mailSent } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");

        // What apps hold on a member's consent ends when the member is demoted (or leaves).
        let r = gql_in(
            &t,
            &owner.token,
            &org,
            "mutation { createApp(input: {name: \"Reporter\", description: \"d\", category: ANALYTICS, requestedScopes: [\"keys:read\", \"keys:write\"], redirectUris: [\"https://rep.example.com/cb\"]}) { clientSecret app { id } } }",
            json!({}),
        )
        .await;
        let rep = r["data"]["createApp"]["app"]["id"].as_str().unwrap().to_string();
        let rep_secret = r["data"]["createApp"]["clientSecret"].as_str().unwrap().to_string();
        let r = gql_in(
            &t,
            &member.token,
            &org,
            "mutation($i: AuthorizeAppInput!) { authorizeApp(input: $i) { redirectTo } }",
            json!({ "i": { "clientId": rep } }),
        )
        .await;
        let redirect = r["data"]["authorizeApp"]["redirectTo"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
        let code_value =
            url::Url::parse(&redirect).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
        let tokens = token_form(
            &t,
            &rep,
            &rep_secret,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code_value),
                ("redirect_uri", "https://rep.example.com/cb"),
            ],
        )
        .await;
        let access = tokens["access_token"].as_str().unwrap_or_else(|| panic!("{tokens}")).to_string();
        t.gql_ok(Some(&access), "{ apiKeys { totalCount } }", json!({})).await;
        let r = gql_in(
            &t,
            &owner.token,
            &org,
            "mutation($u: ID!) { changeMemberRole(userId: $u, role: VIEWER) { role } }",
            json!({ "u": member.user_id }),
        )
        .await;
        assert_eq!(r["data"]["changeMemberRole"]["role"], "VIEWER", "{r}");
        let (status, body) = t.gql_status(Some(&access), "{ apiKeys { totalCount } }", json!({})).await;
        assert_eq!(status, 401, "[{backend:?}] the demoted member's consent no longer holds: {body}");
    }
}
