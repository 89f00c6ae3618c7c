//! Teams: invitations mailed over real SMTP and accepted through their link, roles and the matrix
//! of what each may do on every surface (GraphQL over HTTP, REST, WebSocket, OAuth tokens), the
//! last OWNER, transfer of ownership, address confirmation and password reset, plan caps.

use serde_json::{Value, json};

use crate::common::{Backend, Session, TestApp, backends, code, ws};
use crate::smtp::SmtpServer;

async fn app_with_smtp(backend: Backend, smtp: &SmtpServer) -> TestApp {
    let url = smtp.url();
    TestApp::with_config(backend, move |c| c.smtp_url = Some(url)).await
}

/// A GraphQL call acting in `org` (`X-Organization-Id`).
pub(crate) async fn gql_in(t: &TestApp, token: &str, org: &str, query: &str, variables: Value) -> Value {
    t.http
        .post(t.url("/graphql"))
        .bearer_auth(token)
        .header("x-organization-id", org)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A REST call acting in `org`; returns (status, body or Null).
async fn rest_in(t: &TestApp, method: &str, path: &str, token: &str, org: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req =
        t.http.request(method, t.url(&format!("/api/v1{path}"))).bearer_auth(token).header("x-organization-id", org);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

async fn invite(t: &TestApp, token: &str, org: &str, email: &str, role: &str) -> Value {
    let r = gql_in(
        t,
        token,
        org,
        "mutation($e: String!, $r: Role!) { inviteMember(input: {email: $e, role: $r}) { mailSent invitation { id status role email } } }",
        json!({ "e": email, "r": role }),
    )
    .await;
    assert!(r.get("errors").is_none(), "[{:?}] invite {email}: {r}", t.backend);
    r["data"]["inviteMember"].clone()
}

/// Registers through an invitation token (the account joins the inviting organization).
async fn register_invited(t: &TestApp, email: &str, token: &str) -> Session {
    let r = t
        .gql_ok(
            None,
            "mutation($i: RegisterInput!) { register(input: $i) { user { id personalOrganizationId emailVerified } session { token refreshToken } } }",
            json!({ "i": { "email": email, "password": "correct horse battery", "invitationToken": token } }),
        )
        .await;
    assert_eq!(r["register"]["user"]["emailVerified"], true, "the invitation came to the address");
    Session {
        token: r["register"]["session"]["token"].as_str().unwrap().into(),
        refresh_token: r["register"]["session"]["refreshToken"].as_str().unwrap().into(),
        user_id: r["register"]["user"]["id"].as_str().unwrap().into(),
        org_id: r["register"]["user"]["personalOrganizationId"].as_str().unwrap().into(),
    }
}

async fn login(t: &TestApp, email: &str, password: &str) -> Value {
    t.gql(
        None,
        "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { session { token } } }",
        json!({ "e": email, "p": password }),
    )
    .await
}

async fn members(t: &TestApp, token: &str, org: &str) -> Vec<(String, String)> {
    let r = gql_in(t, token, org, "{ members { email role } }", json!({})).await;
    let list = r["data"]["members"].as_array().unwrap_or_else(|| panic!("{r}"));
    list.iter().map(|m| (m["email"].as_str().unwrap().to_string(), m["role"].as_str().unwrap().to_string())).collect()
}

async fn page(t: &TestApp, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = t.http.get(t.url(path)).send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

async fn post_form(t: &TestApp, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let resp = t
        .http
        .post(t.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn event_types(t: &TestApp, token: &str, org: &str) -> Vec<String> {
    let r = gql_in(t, token, org, "{ events(first: 100) { edges { node { type } } } }", json!({})).await;
    r["data"]["events"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|e| e["node"]["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_is_mailed_accepted_once_through_its_link_and_expires() {
    for backend in backends() {
        let smtp = SmtpServer::start().await;
        let t = app_with_smtp(backend, &smtp).await;
        let admin = t.register("admin@example.com").await;
        t.lift_starter_limits(&admin.token).await;
        let owner = t.register("owner@example.com").await;
        let org = owner.org_id.clone();

        // Invited: a mail with the link to the acceptance page.
        let sent = invite(&t, &owner.token, &org, "New@Example.com", "ADMIN").await;
        assert_eq!(sent["mailSent"], true);
        assert_eq!(sent["invitation"]["status"], "PENDING");
        assert_eq!(sent["invitation"]["email"], "new@example.com", "addresses are lower-cased");
        let mail = smtp.nth("new@example.com", 1).await;
        assert!(mail.subject().contains("invited you"), "{}", mail.subject());
        assert!(mail.body().contains("as ADMIN"), "{}", mail.body());
        assert!(mail.link_path().starts_with("/invitations/accept?token=gki_"), "{}", mail.link());
        let token = mail.token();

        // The page offers to sign up (no account has this address), with the page headers.
        let (status, headers, html) = page(&t, &mail.link_path()).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("Create account and join") && html.contains("ADMIN"), "{html}");
        assert!(headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
        assert_eq!(headers["x-content-type-options"], "nosniff");

        let (status, html) = post_form(
            &t,
            "/invitations/accept",
            &[("token", &token), ("action", "signup"), ("name", "Nova"), ("password", "correct horse battery")],
        )
        .await;
        assert_eq!(status, 200, "[{backend:?}] {html}");
        assert!(html.contains("You joined"), "{html}");
        assert!(members(&t, &owner.token, &org).await.contains(&("new@example.com".into(), "ADMIN".into())));

        // The new account signs in and works in the organization as ADMIN; its address counts
        // as confirmed (the invitation came to it).
        let r = login(&t, "new@example.com", "correct horse battery").await;
        let nova = r["data"]["login"]["session"]["token"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
        let r = gql_in(&t, &nova, &org, "{ viewer { role user { emailVerified } } }", json!({})).await;
        assert_eq!(r["data"]["viewer"], json!({ "role": "ADMIN", "user": { "emailVerified": true } }), "{r}");

        // The token worked once.
        let (status, html) =
            post_form(&t, "/invitations/accept", &[("token", &token), ("action", "signin"), ("password", "x")]).await;
        assert_eq!(status, 404, "{html}");
        let r = t
            .gql(Some(&nova), "mutation($t: String!) { acceptInvitation(token: $t) { id } }", json!({ "t": token }))
            .await;
        assert_eq!(code(&r), "NOT_FOUND", "{r}");
        let types = event_types(&t, &owner.token, &org).await;
        assert!(types.contains(&"member.invited".into()) && types.contains(&"member.joined".into()), "{types:?}");

        // Twice the same address is a conflict; so is a member's.
        invite(&t, &owner.token, &org, "late@example.com", "VIEWER").await;
        let q = "mutation($e: String!) { inviteMember(input: {email: $e, role: VIEWER}) { mailSent } }";
        let r = gql_in(&t, &owner.token, &org, q, json!({ "e": "late@example.com" })).await;
        assert_eq!(code(&r), "CONFLICT", "{r}");
        let r = gql_in(&t, &owner.token, &org, q, json!({ "e": "new@example.com" })).await;
        assert_eq!(code(&r), "CONFLICT", "{r}");

        // Resent: a new link; the first one is dead.
        let first = smtp.nth("late@example.com", 1).await.token();
        let list = gql_in(
            &t,
            &owner.token,
            &org,
            "{ invitations(status: PENDING) { totalCount edges { node { id email } } } }",
            json!({}),
        )
        .await;
        let late_id = list["data"]["invitations"]["edges"][0]["node"]["id"].as_str().unwrap().to_string();
        assert_eq!(list["data"]["invitations"]["totalCount"], 1, "{list}");
        let r = gql_in(
            &t,
            &owner.token,
            &org,
            "mutation($id: ID!) { resendInvitation(id: $id) { mailSent invitation { sentCount } } }",
            json!({ "id": late_id }),
        )
        .await;
        assert_eq!(r["data"]["resendInvitation"], json!({ "mailSent": true, "invitation": { "sentCount": 2 } }), "{r}");
        let second = smtp.nth("late@example.com", 2).await.token();
        assert_ne!(first, second);
        let preview =
            "query($t: String!) { invitationPreview(token: $t) { organizationName role email accountExists } }";
        assert_eq!(code(&t.gql(None, preview, json!({ "t": first })).await), "NOT_FOUND");
        let r = t.gql_ok(None, preview, json!({ "t": second })).await;
        assert_eq!(r["invitationPreview"]["role"], "VIEWER");
        assert_eq!(r["invitationPreview"]["accountExists"], false);

        // Revoked: the link is dead, the list says so.
        let r = gql_in(
            &t,
            &owner.token,
            &org,
            "mutation($id: ID!) { revokeInvitation(id: $id) { status } }",
            json!({ "id": late_id }),
        )
        .await;
        assert_eq!(r["data"]["revokeInvitation"]["status"], "REVOKED", "{r}");
        assert_eq!(code(&t.gql(None, preview, json!({ "t": second })).await), "NOT_FOUND");

        // A signed-in user accepts with their session; someone else's address is refused.
        let member = t.register("member@example.com").await;
        let other = t.register("other@example.com").await;
        invite(&t, &owner.token, &org, "member@example.com", "MEMBER").await;
        let token = smtp.nth("member@example.com", 2).await.token(); // the first mail is the address confirmation
        let accept = "mutation($t: String!) { acceptInvitation(token: $t) { id viewerRole } }";
        let r = t.gql(Some(&other.token), accept, json!({ "t": token })).await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
        assert!(r["errors"][0]["message"].as_str().unwrap().contains("another email address"), "{r}");
        let r = t.gql_ok(Some(&member.token), accept, json!({ "t": token })).await;
        assert_eq!(r["acceptInvitation"], json!({ "id": org, "viewerRole": "MEMBER" }));
        // Its cached session sees the organization at once.
        let r = gql_in(&t, &member.token, &org, "{ viewer { role } }", json!({})).await;
        assert_eq!(r["data"]["viewer"]["role"], "MEMBER", "{r}");

        // Expired after the invitation lifetime (7 days); the address can be invited again.
        invite(&t, &owner.token, &org, "slow@example.com", "VIEWER").await;
        let slow = smtp.nth("slow@example.com", 1).await.token();
        t.clock.advance_ms(7 * 86_400_000 + 1000);
        assert_eq!(code(&t.gql(None, preview, json!({ "t": slow })).await), "NOT_FOUND");
        let r = login(&t, "owner@example.com", "correct horse battery").await;
        let owner = Session { token: r["data"]["login"]["session"]["token"].as_str().unwrap().into(), ..owner };
        let r = login(&t, "admin@example.com", "correct horse battery").await;
        let admin = Session { token: r["data"]["login"]["session"]["token"].as_str().unwrap().into(), ..admin };
        let r =
            gql_in(&t, &owner.token, &org, "{ invitations(status: EXPIRED) { edges { node { email } } } }", json!({}))
                .await;
        assert_eq!(r["data"]["invitations"]["edges"][0]["node"]["email"], "slow@example.com", "{r}");
        invite(&t, &owner.token, &org, "slow@example.com", "VIEWER").await;

        // The plan caps members, pending invitations included: 3 members and 1 pending here.
        let r = t
            .gql_ok(
                Some(&admin.token),
                "mutation { updatePlan(id: \"pln_0000000000000000000starter\", input: {maxMembers: 4}) { maxMembers } }",
                json!({}),
            )
            .await;
        assert_eq!(r["updatePlan"]["maxMembers"], 4);
        let r = gql_in(&t, &owner.token, &org, q, json!({ "e": "sixth@example.com" })).await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
        assert!(r["errors"][0]["message"].as_str().unwrap().contains("allows 4 members"), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_are_confirmed_and_passwords_reset_through_mailed_links() {
    for backend in backends() {
        let smtp = SmtpServer::start().await;
        let t = app_with_smtp(backend, &smtp).await;
        let admin = t.register("admin@example.com").await;
        t.lift_starter_limits(&admin.token).await;
        let dev = t.register("dev@example.com").await;
        let verified = "{ viewer { user { emailVerified } } }";
        assert_eq!(t.gql_ok(Some(&dev.token), verified, json!({})).await["viewer"]["user"]["emailVerified"], false);

        // Sign-up mails a confirmation link; its page confirms with a button (POST).
        let mail = smtp.nth("dev@example.com", 1).await;
        assert!(mail.subject().contains("Confirm your email"), "{}", mail.subject());
        assert!(mail.link_path().starts_with("/auth/verify-email?token=gkv_"), "{}", mail.link());
        let (status, _, html) = page(&t, &mail.link_path()).await;
        assert_eq!(status, 200);
        assert!(html.contains("Confirm my address"), "{html}");
        assert_eq!(
            t.gql_ok(Some(&dev.token), verified, json!({})).await["viewer"]["user"]["emailVerified"],
            false,
            "a GET confirms nothing"
        );
        let (status, html) = post_form(&t, "/auth/verify-email", &[("token", &mail.token())]).await;
        assert_eq!(status, 200, "{html}");
        assert_eq!(t.gql_ok(Some(&dev.token), verified, json!({})).await["viewer"]["user"]["emailVerified"], true);
        let (status, _) = post_form(&t, "/auth/verify-email", &[("token", &mail.token())]).await;
        assert_eq!(status, 400, "the link works once");
        let r = t.gql(Some(&dev.token), "mutation { requestEmailVerification }", json!({})).await;
        assert_eq!(code(&r), "CONFLICT", "{r}");

        // A reset mails a link; the same answer for an unknown address, which gets nothing.
        let second = login(&t, "dev@example.com", "correct horse battery").await;
        let second = second["data"]["login"]["session"]["token"].as_str().unwrap().to_string();
        let (status, _) =
            t.rest("POST", "/auth/forgot-password", None, Some(json!({ "email": "dev@example.com" }))).await;
        assert_eq!(status, 202);
        let (status, _) =
            t.rest("POST", "/auth/forgot-password", None, Some(json!({ "email": "nobody@example.com" }))).await;
        assert_eq!(status, 202);
        let mail = smtp.nth("dev@example.com", 2).await;
        assert!(mail.subject().contains("Reset your Gantry password"), "{}", mail.subject());
        assert!(mail.link_path().starts_with("/auth/reset-password?token=gkp_"), "{}", mail.link());
        assert!(smtp.to("nobody@example.com").is_empty());
        // A second request within a minute sends nothing more.
        t.gql_ok(None, "mutation { requestPasswordReset(email: \"dev@example.com\") }", json!({})).await;

        let token = mail.token();
        let (status, body) =
            t.rest("POST", "/auth/reset-password", None, Some(json!({ "token": token, "password": "short" }))).await;
        assert_eq!((status, body["error"]["details"]["field"].clone()), (422, json!("password")), "{body}");
        let (status, body) = t
            .rest(
                "POST",
                "/auth/reset-password",
                None,
                Some(json!({ "token": token, "password": "a brand new passphrase" })),
            )
            .await;
        assert_eq!(status, 204, "[{backend:?}] {body}");
        // Every session ended; the old password no longer works, the new one does.
        for s in [&dev.token, &second] {
            let (status, _) = t.gql_status(Some(s), "{ viewer { id } }", json!({})).await;
            assert_eq!(status, 401);
        }
        assert_eq!(code(&login(&t, "dev@example.com", "correct horse battery").await), "UNAUTHENTICATED");
        let r = login(&t, "dev@example.com", "a brand new passphrase").await;
        assert!(r["data"]["login"]["session"]["token"].is_string(), "{r}");
        let (status, body) = t
            .rest("POST", "/auth/reset-password", None, Some(json!({ "token": token, "password": "yet another one!" })))
            .await;
        assert_eq!((status, body["error"]["details"]["field"].clone()), (422, json!("token")), "used once: {body}");
        assert_eq!(smtp.to("dev@example.com").len(), 2, "no mail for the request within a minute");
        let new = r["data"]["login"]["session"]["token"].as_str().unwrap();
        let types = event_types(&t, new, &dev.org_id).await;
        assert!(
            types.contains(&"user.email_verified".into()) && types.contains(&"user.password_reset".into()),
            "{types:?}"
        );
    }
}

/// A password change uses up the reset links mailed before it, and a user gets 10 attempts an
/// hour, right or wrong: past them even the right password is refused until the hour has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_uses_up_reset_links_and_is_throttled_per_user() {
    for backend in backends() {
        let smtp = SmtpServer::start().await;
        let t = app_with_smtp(backend, &smtp).await;
        let dev = t.register("dev@example.com").await;
        let (status, _) =
            t.rest("POST", "/auth/forgot-password", None, Some(json!({ "email": "dev@example.com" }))).await;
        assert_eq!(status, 202);
        let link = smtp.nth("dev@example.com", 2).await.token();
        let change = "mutation($c: String!, $n: String!) { changePassword(input: {currentPassword: $c, newPassword: $n}) { sessionsRevoked } }";
        t.gql_ok(Some(&dev.token), change, json!({ "c": "correct horse battery", "n": "the second password" })).await;
        let (status, body) = t
            .rest(
                "POST",
                "/auth/reset-password",
                None,
                Some(json!({ "token": link, "password": "a thief's password" })),
            )
            .await;
        assert_eq!((status, body["error"]["details"]["field"].clone()), (422, json!("token")), "[{backend:?}] {body}");
        assert!(login(&t, "dev@example.com", "the second password").await["errors"].is_null());

        // One attempt spent above; nine wrong guesses spend the hour's ten.
        for i in 0..9 {
            let r = t
                .gql(Some(&dev.token), change, json!({ "c": format!("guess number {i}"), "n": "a third password" }))
                .await;
            assert_eq!(r["errors"][0]["extensions"]["field"], "currentPassword", "[{backend:?}] guess {i}: {r}");
        }
        let right = json!({ "c": "the second password", "n": "a third password" });
        let r = t.gql(Some(&dev.token), change, right.clone()).await;
        assert_eq!(code(&r), "RATE_LIMITED", "[{backend:?}] {r}");
        assert_eq!(r["errors"][0]["extensions"]["window"], "password_changes", "{r}");
        let retry_after = r["errors"][0]["extensions"]["retryAfter"].as_i64().unwrap();
        assert!((1..=3600).contains(&retry_after), "{r}");
        assert!(login(&t, "dev@example.com", "a third password").await["errors"].is_array(), "nothing changed");
        // Another user is not held back by it.
        let other = t.register("other@example.com").await;
        t.gql_ok(Some(&other.token), change, json!({ "c": "correct horse battery", "n": "other's new password" }))
            .await;
        // Once the window has room again (its Retry-After), the right password works.
        t.clock.advance_ms(retry_after * 1000 - 2000);
        assert_eq!(code(&t.gql(Some(&dev.token), change, right.clone()).await), "RATE_LIMITED", "not before");
        t.clock.advance_ms(2000);
        t.gql_ok(Some(&dev.token), change, right).await;
        assert!(login(&t, "dev@example.com", "a third password").await["errors"].is_null());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_mail_is_written_as_eml_files_in_the_data_directory() {
    let t = TestApp::new(Backend::SqliteMemory).await;
    t.register("admin@example.com").await;
    let dir = t.app.config.data_dir.join("mail");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "eml");
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    assert!(raw.contains("To: admin@example.com") && raw.contains("Subject: Confirm your email address"), "{raw}");
    assert!(crate::smtp::decode_qp(&raw).contains("/auth/verify-email?token=gkv_"), "{raw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_owner_stays_and_ownership_is_transferred() {
    for backend in backends() {
        let smtp = SmtpServer::start().await;
        let t = app_with_smtp(backend, &smtp).await;
        let admin = t.register("admin@example.com").await;
        t.lift_starter_limits(&admin.token).await;
        let owner = t.register("owner@example.com").await;
        let org = owner.org_id.clone();
        invite(&t, &owner.token, &org, "second@example.com", "ADMIN").await;
        let second = register_invited(&t, "second@example.com", &smtp.nth("second@example.com", 1).await.token()).await;
        invite(&t, &owner.token, &org, "viewer@example.com", "VIEWER").await;
        let viewer = register_invited(&t, "viewer@example.com", &smtp.nth("viewer@example.com", 1).await.token()).await;

        // An ADMIN manages members but not owners.
        let role = "mutation($u: ID!, $r: Role!) { changeMemberRole(userId: $u, role: $r) { role } }";
        let r = gql_in(&t, &second.token, &org, role, json!({ "u": owner.user_id, "r": "MEMBER" })).await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
        let r = gql_in(
            &t,
            &second.token,
            &org,
            "mutation($u: ID!) { removeMember(userId: $u) }",
            json!({ "u": owner.user_id }),
        )
        .await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
        let r = gql_in(
            &t,
            &second.token,
            &org,
            "mutation { inviteMember(input: {email: \"o2@example.com\", role: OWNER}) { mailSent } }",
            json!({}),
        )
        .await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
        let r = gql_in(&t, &second.token, &org, role, json!({ "u": viewer.user_id, "r": "BILLING" })).await;
        assert_eq!(r["data"]["changeMemberRole"]["role"], "BILLING", "{r}");
        // The member's cached session has the new role at once.
        let r = gql_in(&t, &viewer.token, &org, "{ viewer { role } subscription { status } }", json!({})).await;
        assert_eq!(r["data"]["viewer"]["role"], "BILLING", "{r}");
        assert_eq!(r["data"]["subscription"]["status"], "ACTIVE", "BILLING sees the bill: {r}");

        // The last OWNER can neither leave nor step down.
        let r = gql_in(&t, &owner.token, &org, "mutation { leaveOrganization }", json!({})).await;
        assert_eq!(code(&r), "CONFLICT", "{r}");
        let r = gql_in(&t, &owner.token, &org, role, json!({ "u": owner.user_id, "r": "ADMIN" })).await;
        assert_eq!(code(&r), "CONFLICT", "{r}");
        assert!(r["errors"][0]["message"].as_str().unwrap().contains("last OWNER"), "{r}");

        // Transfer: the other becomes OWNER, the caller ADMIN.
        let r = gql_in(
            &t,
            &second.token,
            &org,
            "mutation($u: ID!) { transferOwnership(userId: $u) }",
            json!({ "u": second.user_id }),
        )
        .await;
        assert_eq!(code(&r), "FORBIDDEN", "only an OWNER transfers: {r}");
        let (status, body) = rest_in(
            &t,
            "POST",
            "/organization/transfer",
            &owner.token,
            &org,
            Some(json!({ "user_id": second.user_id })),
        )
        .await;
        assert_eq!(status, 204, "[{backend:?}] {body}");
        let mut got = members(&t, &owner.token, &org).await;
        got.sort();
        assert_eq!(
            got,
            vec![
                ("owner@example.com".into(), "ADMIN".into()),
                ("second@example.com".into(), "OWNER".into()),
                ("viewer@example.com".into(), "BILLING".into())
            ]
        );
        // The new OWNER removes the old one; a member leaves by themselves.
        let (status, _) =
            rest_in(&t, "DELETE", &format!("/organization/members/{}", owner.user_id), &second.token, &org, None).await;
        assert_eq!(status, 204);
        let r = gql_in(&t, &owner.token, &org, "{ viewer { role } }", json!({})).await;
        assert_eq!(code(&r), "NOT_FOUND", "no longer a member: {r}");
        let r = gql_in(&t, &viewer.token, &org, "mutation { leaveOrganization }", json!({})).await;
        assert_eq!(r["data"]["leaveOrganization"], true, "{r}");
        assert_eq!(
            members(&t, &second.token, &org).await,
            vec![("second@example.com".to_string(), "OWNER".to_string())]
        );

        let r =
            gql_in(&t, &second.token, &org, "{ auditLog(first: 50) { edges { node { action } } } }", json!({})).await;
        let actions: Vec<&str> = r["data"]["auditLog"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .map(|e| e["node"]["action"].as_str().unwrap())
            .collect();
        for a in [
            "org.ownership_transferred",
            "member.role_changed",
            "member.removed",
            "member.left",
            "member.joined",
            "member.invited",
        ] {
            assert!(actions.contains(&a), "[{backend:?}] {a} missing from {actions:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_caps_active_api_keys() {
    for backend in backends() {
        let t = TestApp::new(backend).await;
        let admin = t.register("admin@example.com").await;
        t.lift_starter_limits(&admin.token).await;
        t.gql_ok(
            Some(&admin.token),
            "mutation { updatePlan(id: \"pln_0000000000000000000starter\", input: {maxApiKeys: 2}) { maxApiKeys } }",
            json!({}),
        )
        .await;
        let dev = t.register("dev@example.com").await;
        t.create_key(&dev.token, &["keys:read"]).await;
        let (_, second) = t.create_key(&dev.token, &["keys:read"]).await;
        let q = "mutation { createApiKey(input: {name: \"third\", scopes: [\"keys:read\"]}) { secret } }";
        let r = t.gql(Some(&dev.token), q, json!({})).await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
        assert!(r["errors"][0]["message"].as_str().unwrap().contains("2 active API keys"), "{r}");
        t.gql_ok(Some(&dev.token), "mutation($id: ID!) { revokeApiKey(id: $id) { id } }", json!({ "id": second }))
            .await;
        t.gql_ok(Some(&dev.token), q, json!({})).await;
    }
}

/// What each role may do, one probe per row of the matrix. A probe distinguishes "allowed"
/// (success, or a refusal that comes after the permission check) from FORBIDDEN, and changes
/// nothing the other probes depend on.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    /// Invite an address that is already a member: CONFLICT when allowed.
    ManageMembers,
    /// Create an API key.
    ManageKeys,
    /// Uninstall an installation that does not exist: NOT_FOUND when allowed.
    ManageInstalls,
    /// Read the subscription.
    ViewBilling,
    /// Remove a payment method that does not exist: NOT_FOUND when allowed.
    ManageBilling,
    /// List keys (masked) and read usage.
    Read,
    /// Transfer ownership to somebody who is not a member: NOT_FOUND when allowed.
    Owner,
}

const OPS: [Op; 7] =
    [Op::ManageMembers, Op::ManageKeys, Op::ManageInstalls, Op::ViewBilling, Op::ManageBilling, Op::Read, Op::Owner];
const ROLES: [&str; 5] = ["OWNER", "ADMIN", "MEMBER", "BILLING", "VIEWER"];
const NOBODY: &str = "usr_00000000000000000000000000";

/// The matrix of the teams issue.
fn allowed(role: &str, op: Op) -> bool {
    match op {
        Op::ManageMembers => matches!(role, "OWNER" | "ADMIN"),
        Op::ManageKeys | Op::ManageInstalls => matches!(role, "OWNER" | "ADMIN" | "MEMBER"),
        Op::ViewBilling | Op::ManageBilling => matches!(role, "OWNER" | "ADMIN" | "BILLING"),
        Op::Read => true,
        Op::Owner => role == "OWNER",
    }
}

fn graphql_probe(op: Op, owner_email: &str) -> String {
    match op {
        Op::ManageMembers => {
            format!("mutation {{ inviteMember(input: {{email: \"{owner_email}\", role: VIEWER}}) {{ mailSent }} }}")
        }
        Op::ManageKeys => {
            "mutation { createApiKey(input: {name: \"probe\", scopes: [\"keys:read\"]}) { apiKey { id } } }".into()
        }
        Op::ManageInstalls => {
            "mutation { uninstallApp(id: \"ins_00000000000000000000000000\") { installation { id } } }".into()
        }
        Op::ViewBilling => "{ subscription { status } }".into(),
        Op::ManageBilling => "mutation { removePaymentMethod(id: \"pm_00000000000000000000000000\") }".into(),
        Op::Read => "{ apiKeys(first: 1) { totalCount } usage { stats { calls } } }".into(),
        Op::Owner => format!("mutation {{ transferOwnership(userId: \"{NOBODY}\") }}"),
    }
}

/// The code an allowed probe ends in (None: success).
fn allowed_code(op: Op) -> Option<&'static str> {
    match op {
        Op::ManageMembers => Some("CONFLICT"),
        Op::ManageInstalls | Op::ManageBilling | Op::Owner => Some("NOT_FOUND"),
        _ => None,
    }
}

/// (method, path, body, status when allowed) of the REST route for a probe.
fn rest_probe(op: Op, owner_email: &str) -> (&'static str, String, Option<Value>, u16) {
    match op {
        Op::ManageMembers => {
            ("POST", "/organization/invitations".into(), Some(json!({ "email": owner_email, "role": "VIEWER" })), 409)
        }
        Op::ManageKeys => ("POST", "/keys".into(), Some(json!({ "name": "probe", "scopes": ["keys:read"] })), 201),
        Op::ManageInstalls => ("DELETE", "/apps/ins_00000000000000000000000000/uninstall".into(), None, 404),
        Op::ViewBilling => ("GET", "/billing/current".into(), None, 200),
        Op::ManageBilling => ("DELETE", "/billing/payment-methods/pm_00000000000000000000000000".into(), None, 404),
        Op::Read => ("GET", "/keys".into(), None, 200),
        Op::Owner => ("POST", "/organization/transfer".into(), Some(json!({ "user_id": NOBODY })), 404),
    }
}

fn outcome(body: &Value) -> Option<String> {
    body.get("errors").map(|_| code(body).to_string())
}

/// The outcome of a query or mutation over one `graphql-transport-ws` connection.
async fn over_ws(sock: &mut ws::Socket, id: &str, query: &str) -> Option<String> {
    ws::subscribe(sock, id, query).await;
    loop {
        let m = ws::next(sock).await.expect("a message");
        if m["id"] != id {
            continue;
        }
        match m["type"].as_str() {
            Some("next") => return outcome(&m["payload"]),
            Some("error") => return Some(m["payload"][0]["extensions"]["code"].as_str().unwrap_or("?").to_string()),
            other => panic!("unexpected {other:?}: {m}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_matrix_holds_for_every_operation_on_every_surface() {
    for backend in backends() {
        let smtp = SmtpServer::start().await;
        let t = app_with_smtp(backend, &smtp).await;
        let admin = t.register("admin@example.com").await;
        t.lift_starter_limits(&admin.token).await;
        let owner = t.register("owner@example.com").await;
        let r = t.gql_ok(Some(&owner.token), "mutation { createOrganization(name: \"Acme\") { id } }", json!({})).await;
        let org = r["createOrganization"]["id"].as_str().unwrap().to_string();
        let mut sessions = vec![("OWNER", owner.clone())];
        for role in &ROLES[1..] {
            let email = format!("{}.member@example.com", role.to_lowercase());
            invite(&t, &owner.token, &org, &email, role).await;
            let token = smtp.nth(&email, 1).await.token();
            sessions.push((role, register_invited(&t, &email, &token).await));
        }

        let mut checked = 0;
        for (role, s) in &sessions {
            // One WebSocket connection per member, acting in the organization.
            let mut sock = ws::connect(&t.ws_url(), "graphql-transport-ws").await;
            ws::send(
                &mut sock,
                json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", s.token), "X-Organization-Id": org } }),
            )
            .await;
            assert_eq!(ws::next(&mut sock).await.unwrap()["type"], "connection_ack");
            for (n, op) in OPS.iter().enumerate() {
                let expect =
                    if allowed(role, *op) { allowed_code(*op).map(str::to_string) } else { Some("FORBIDDEN".into()) };
                let q = graphql_probe(*op, "owner@example.com");
                let http = outcome(&gql_in(&t, &s.token, &org, &q, json!({})).await);
                assert_eq!(http, expect, "[{backend:?}] {role} {op:?} over GraphQL/HTTP");
                let wsr = over_ws(&mut sock, &n.to_string(), &q).await;
                assert_eq!(wsr, expect, "[{backend:?}] {role} {op:?} over WebSocket");
                let (method, path, body, ok) = rest_probe(*op, "owner@example.com");
                let (status, resp) = rest_in(&t, method, &path, &s.token, &org, body).await;
                let want = if allowed(role, *op) { ok } else { 403 };
                assert_eq!(status, want, "[{backend:?}] {role} {op:?} over REST {method} {path}: {resp}");
                checked += 3;
            }
        }

        // OAuth tokens: an app installed by consent of each role holds what that role may grant;
        // BILLING and VIEWER do not manage installs. Owner-only operations need a signed-in OWNER.
        let mut first_app: Option<String> = None;
        for (role, s) in &sessions {
            // An app of the organization per consenting role (the plan allows 3); BILLING and
            // VIEWER try the first one.
            let (app_id, secret) = if allowed(role, Op::ManageInstalls) {
                let r = gql_in(
                    &t,
                    &owner.token,
                    &org,
                    "mutation($n: String!) { createApp(input: {name: $n, description: \"probe\", category: ANALYTICS, requestedScopes: [\"keys:read\", \"keys:write\", \"apps:write\", \"billing:write\", \"usage:read\", \"org:write\"], redirectUris: [\"https://probe.example.com/cb\"]}) { clientSecret app { id } } }",
                    json!({ "n": format!("Probe {role}") }),
                )
                .await;
                let id = r["data"]["createApp"]["app"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
                first_app.get_or_insert(id.clone());
                (id, r["data"]["createApp"]["clientSecret"].as_str().unwrap().to_string())
            } else {
                (first_app.clone().unwrap(), String::new())
            };
            let r = gql_in(
                &t,
                &s.token,
                &org,
                "mutation($i: AuthorizeAppInput!) { authorizeApp(input: $i) { redirectTo } }",
                json!({ "i": { "clientId": app_id } }),
            )
            .await;
            if !allowed(role, Op::ManageInstalls) {
                assert_eq!(code(&r), "FORBIDDEN", "[{backend:?}] {role} installs: {r}");
                checked += 1;
                continue;
            }
            let redirect = r["data"]["authorizeApp"]["redirectTo"].as_str().unwrap_or_else(|| panic!("{r}"));
            let code_value: String = url::Url::parse(redirect)
                .unwrap()
                .query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
                .unwrap();
            let tokens: Value = t
                .http
                .post(t.url("/oauth/token"))
                .basic_auth(&app_id, Some(&secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(
                    url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs([
                            ("grant_type", "authorization_code"),
                            ("code", code_value.as_str()),
                            ("redirect_uri", "https://probe.example.com/cb"),
                        ])
                        .finish(),
                )
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let access = tokens["access_token"].as_str().unwrap_or_else(|| panic!("{tokens}")).to_string();
            for op in OPS {
                let expect = if allowed(role, op) && op != Op::Owner {
                    allowed_code(op).map(str::to_string)
                } else {
                    Some("FORBIDDEN".into())
                };
                let got = outcome(&t.gql(Some(&access), &graphql_probe(op, "owner@example.com"), json!({})).await);
                assert_eq!(got, expect, "[{backend:?}] an app installed by {role}: {op:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, 5 * 7 * 3 + 3 * 7 + 2);
    }
}
