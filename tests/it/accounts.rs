use gantry::platform::clock::Clock;
use serde_json::json;

use crate::common::{TestApp, backends, code};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_creates_a_personal_org_and_only_the_first_user_is_admin() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let first = app.register("first@example.com").await;
        let second = app.register("second@example.com").await;
        for (s, admin) in [(&first, true), (&second, false)] {
            let data = app
                .gql_ok(Some(&s.token), "{ viewer { id kind role scopes user { email isPlatformAdmin } organization { id isPersonal viewerRole } } }", json!({}))
                .await;
            let v = &data["viewer"];
            assert_eq!(v["id"], s.user_id.as_str());
            assert_eq!(v["kind"], "USER");
            assert_eq!(v["role"], "OWNER");
            assert_eq!(v["organization"]["id"], s.org_id.as_str());
            assert_eq!(v["organization"]["isPersonal"], true);
            assert_eq!(v["user"]["isPlatformAdmin"], admin, "[{backend:?}] admin flag of {}", v["user"]["email"]);
        }
        let orgs = app.gql_ok(Some(&second.token), "{ organizations { id viewerRole } }", json!({})).await;
        assert_eq!(orgs["organizations"], json!([{ "id": second.org_id, "viewerRole": "OWNER" }]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_rejects_bad_input_and_duplicates_without_partial_writes() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let q = "mutation($i: RegisterInput!) { register(input: $i) { user { id } } }";
        let bad_email =
            app.gql(None, q, json!({ "i": { "email": "not-an-email", "password": "long enough pw" } })).await;
        assert_eq!(code(&bad_email), "BAD_USER_INPUT");
        assert_eq!(bad_email["errors"][0]["extensions"]["field"], "email");
        let short = app.gql(None, q, json!({ "i": { "email": "a@example.com", "password": "short" } })).await;
        assert_eq!(code(&short), "BAD_USER_INPUT");
        assert_eq!(short["errors"][0]["extensions"]["field"], "password");
        app.register("dup@example.com").await;
        let dup =
            app.gql(None, q, json!({ "i": { "email": "DUP@example.com", "password": "correct horse battery" } })).await;
        assert_eq!(code(&dup), "CONFLICT", "[{backend:?}] {dup}");
        // The refused registrations left nothing behind: the email still logs in to the first account only.
        let login = app
            .gql_ok(None, "mutation { login(input: {email: \"dup@example.com\", password: \"correct horse battery\"}) { user { email } } }", json!({}))
            .await;
        assert_eq!(login["login"]["user"]["email"], "dup@example.com");
        let missing = app.gql(None, "mutation { login(input: {email: \"a@example.com\", password: \"correct horse battery\"}) { user { id } } }", json!({})).await;
        assert_eq!(code(&missing), "UNAUTHENTICATED", "the refused short-password registration must not exist");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_logout_and_refresh_rotate_sessions() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("user@example.com").await;
        let wrong = app.gql(None, "mutation { login(input: {email: \"user@example.com\", password: \"wrong password\"}) { user { id } } }", json!({})).await;
        assert_eq!(code(&wrong), "UNAUTHENTICATED");

        // Refresh: a new session works, the old refresh token is spent.
        let q = "mutation($t: String!) { refreshSession(refreshToken: $t) { session { token refreshToken } } }";
        let refreshed = app.gql_ok(None, q, json!({ "t": s.refresh_token })).await;
        let new_token = refreshed["refreshSession"]["session"]["token"].as_str().unwrap().to_string();
        let again = app.gql(None, q, json!({ "t": s.refresh_token })).await;
        assert_eq!(code(&again), "UNAUTHENTICATED", "[{backend:?}] a refresh token works once");
        let (status, old) = app.gql_status(Some(&s.token), "{ viewer { id } }", json!({})).await;
        assert_eq!((status, code(&old)), (401, "UNAUTHENTICATED"), "the refreshed-away session is revoked");
        app.gql_ok(Some(&new_token), "{ viewer { id } }", json!({})).await;

        // Logout revokes the session used.
        app.gql_ok(Some(&new_token), "mutation { logout }", json!({})).await;
        let (status, after) = app.gql_status(Some(&new_token), "{ viewer { id } }", json!({})).await;
        assert_eq!((status, code(&after)), (401, "UNAUTHENTICATED"));

        // Sessions expire with the (injected) clock.
        let s2 = app
            .gql_ok(None, "mutation { login(input: {email: \"user@example.com\", password: \"correct horse battery\"}) { session { token } } }", json!({}))
            .await;
        let t2 = s2["login"]["session"]["token"].as_str().unwrap().to_string();
        app.gql_ok(Some(&t2), "{ viewer { id } }", json!({})).await;
        app.clock.advance_ms(app.app.config.session_ttl_secs * 1000 + 1);
        let (status, expired) = app.gql_status(Some(&t2), "{ viewer { id } }", json!({})).await;
        assert_eq!((status, code(&expired)), (401, "UNAUTHENTICATED"));
        assert!(expired["errors"][0]["message"].as_str().unwrap().contains("expired"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organization_is_not_found_for_sessions_and_keys() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let _admin = app.register("admin@example.com").await;
        let a = app.register("a@example.com").await;
        let b = app.register("b@example.com").await;
        let q = "query($id: ID!) { organization(id: $id) { id } }";
        let body = app.gql(Some(&a.token), q, json!({ "id": b.org_id })).await;
        assert_eq!(code(&body), "NOT_FOUND", "[{backend:?}] {body}");
        let node = app.gql(Some(&a.token), "query($id: ID!) { node(id: $id) { id } }", json!({ "id": b.org_id })).await;
        assert_eq!(code(&node), "NOT_FOUND");
        // Naming another organization in X-Organization-Id is refused before anything runs.
        let resp = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(&a.token)
            .header("x-organization-id", &b.org_id)
            .json(&json!({ "query": "{ viewer { id } }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 404);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(code(&body), "NOT_FOUND");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_in_several_organizations_picks_one_per_request() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let s = app.register("dev@example.com").await;
        // Warm the session cache so the new membership must invalidate it.
        app.gql_ok(Some(&s.token), "{ viewer { id } }", json!({})).await;
        let created = app
            .gql_ok(
                Some(&s.token),
                "mutation { createOrganization(name: \"Acme Corp\") { id slug isPersonal viewerRole } }",
                json!({}),
            )
            .await;
        let acme = created["createOrganization"]["id"].as_str().unwrap().to_string();
        assert!(
            created["createOrganization"]["slug"].as_str().unwrap().starts_with("acme-corp-"),
            "[{backend:?}] {created}"
        );
        assert_eq!(created["createOrganization"]["viewerRole"], "OWNER");
        let orgs = app.gql_ok(Some(&s.token), "{ organizations { id } }", json!({})).await;
        assert_eq!(orgs["organizations"].as_array().unwrap().len(), 2);

        let in_acme = |query: &'static str| {
            app.http
                .post(app.url("/graphql"))
                .bearer_auth(&s.token)
                .header("x-organization-id", acme.clone())
                .json(&json!({ "query": query }))
                .send()
        };
        let body: serde_json::Value =
            in_acme("{ viewer { role organization { id isPersonal } } }").await.unwrap().json().await.unwrap();
        assert_eq!(body["data"]["viewer"]["organization"]["id"], acme.as_str(), "{body}");
        assert_eq!(body["data"]["viewer"]["role"], "OWNER");
        let key: serde_json::Value = in_acme("mutation { createApiKey(input: {name: \"acme\", scopes: [\"*\"]}) { secret apiKey { organization { id } } } }")
            .await.unwrap().json().await.unwrap();
        assert_eq!(key["data"]["createApiKey"]["apiKey"]["organization"]["id"], acme.as_str());
        // Without the header the personal organization is used, and it does not see Acme's key.
        let personal =
            app.gql_ok(Some(&s.token), "{ viewer { organization { id } } apiKeys { totalCount } }", json!({})).await;
        assert_eq!(personal["viewer"]["organization"]["id"], s.org_id.as_str());
        assert_eq!(personal["apiKeys"]["totalCount"], 0);
        let from_key = app
            .gql(
                Some(key["data"]["createApiKey"]["secret"].as_str().unwrap()),
                "mutation { createOrganization(name: \"x\") { id } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&from_key), "FORBIDDEN");
    }
}

/// A signed-in user lists and ends their sessions, changes their password (the other sessions
/// end) and their name; an API key or another user cannot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_manage_their_own_sessions_password_and_name() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let a = app.register("self@example.com").await;
        let login = |password: &'static str| {
            let app = &app;
            async move {
                app.gql(
                    None,
                    "mutation($i: LoginInput!) { login(input: $i) { session { id token refreshToken } } }",
                    json!({ "i": { "email": "self@example.com", "password": password } }),
                )
                .await
            }
        };
        let second = login("correct horse battery").await;
        let b = second["data"]["login"]["session"]["token"].as_str().unwrap().to_string();
        let b_id = second["data"]["login"]["session"]["id"].as_str().unwrap().to_string();

        let listed = app.gql_ok(Some(&a.token), "{ sessions { id current expiresAt } }", json!({})).await;
        let sessions = listed["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 2, "[{backend:?}] {listed}");
        assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1, "{listed}");
        assert_eq!(sessions[0]["id"], b_id.as_str(), "newest first: {listed}");
        assert_eq!(sessions[0]["current"], false);

        // Ending the other session: its token stops working at once (it was in use, so cached),
        // and so does its refresh token.
        assert!(app.gql(Some(&b), "{ viewer { id } }", json!({})).await.get("errors").is_none());
        app.gql_ok(Some(&a.token), "mutation($id: ID!) { revokeSession(id: $id) }", json!({ "id": b_id })).await;
        let refused = app.gql(Some(&b), "{ viewer { id } }", json!({})).await;
        assert_eq!(code(&refused), "UNAUTHENTICATED", "[{backend:?}] {refused}");
        let b_refresh = second["data"]["login"]["session"]["refreshToken"].as_str().unwrap();
        let refreshed = app
            .gql(
                None,
                "mutation($t: String!) { refreshSession(refreshToken: $t) { session { token } } }",
                json!({ "t": b_refresh }),
            )
            .await;
        assert_eq!(code(&refreshed), "UNAUTHENTICATED", "{refreshed}");
        let again =
            app.gql(Some(&a.token), "mutation($id: ID!) { revokeSession(id: $id) }", json!({ "id": b_id })).await;
        assert_eq!(code(&again), "NOT_FOUND", "{again}");

        // Another user's session is not found; an API key may not list sessions.
        let other = app.register("other@example.com").await;
        let listed = app.gql_ok(Some(&other.token), "{ sessions { id } }", json!({})).await;
        let other_session = listed["sessions"][0]["id"].as_str().unwrap().to_string();
        let theirs = app
            .gql(Some(&a.token), "mutation($id: ID!) { revokeSession(id: $id) }", json!({ "id": other_session }))
            .await;
        assert_eq!(code(&theirs), "NOT_FOUND", "{theirs}");
        assert!(app.gql(Some(&other.token), "{ viewer { id } }", json!({})).await.get("errors").is_none());
        let (key, _) = app.create_key(&a.token, &["*"]).await;
        let by_key = app.gql(Some(&key), "{ sessions { id } }", json!({})).await;
        assert_eq!(code(&by_key), "FORBIDDEN", "{by_key}");

        // The password: the current one is required, the new one checked; the other sessions end.
        let c = login("correct horse battery").await["data"]["login"]["session"]["token"].as_str().unwrap().to_string();
        assert!(
            app.gql(Some(&c), "{ viewer { id } }", json!({})).await.get("errors").is_none(),
            "c is in use (cached)"
        );
        let change = "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { sessionsRevoked } }";
        let wrong = app
            .gql(
                Some(&a.token),
                change,
                json!({ "i": { "currentPassword": "nope nope nope", "newPassword": "a new long password" } }),
            )
            .await;
        assert_eq!(code(&wrong), "BAD_USER_INPUT", "{wrong}");
        assert_eq!(wrong["errors"][0]["extensions"]["field"], "currentPassword", "{wrong}");
        let short = app
            .gql(
                Some(&a.token),
                change,
                json!({ "i": { "currentPassword": "correct horse battery", "newPassword": "short" } }),
            )
            .await;
        assert_eq!(short["errors"][0]["extensions"]["field"], "newPassword", "{short}");
        let changed = app
            .gql_ok(
                Some(&a.token),
                change,
                json!({ "i": { "currentPassword": "correct horse battery", "newPassword": "a new long password" } }),
            )
            .await;
        assert_eq!(changed["changePassword"]["sessionsRevoked"], 1, "[{backend:?}] {changed}");
        assert_eq!(code(&app.gql(Some(&c), "{ viewer { id } }", json!({})).await), "UNAUTHENTICATED");
        assert!(
            app.gql(Some(&a.token), "{ viewer { id } }", json!({})).await.get("errors").is_none(),
            "this one goes on"
        );
        assert_eq!(code(&login("correct horse battery").await), "UNAUTHENTICATED", "the old password no longer works");
        assert!(login("a new long password").await.get("errors").is_none());

        // The name.
        let renamed = app
            .gql_ok(
                Some(&a.token),
                "mutation { updateProfile(input: {name: \"  Ada Lovelace \"}) { name } }",
                json!({}),
            )
            .await;
        assert_eq!(renamed["updateProfile"]["name"], "Ada Lovelace");
        let viewer = app.gql_ok(Some(&a.token), "{ viewer { user { name } } }", json!({})).await;
        assert_eq!(viewer["viewer"]["user"]["name"], "Ada Lovelace");
        let empty =
            app.gql(Some(&a.token), "mutation { updateProfile(input: {name: \" \"}) { name } }", json!({})).await;
        assert_eq!(empty["errors"][0]["extensions"]["field"], "name", "{empty}");
    }
}

/// The session list shows the newest 100 and always the one asking, even when it is older.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_session_is_listed_among_a_hundred_newer_ones() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let a = app.register("many@example.com").await;
        let me = app.gql_ok(Some(&a.token), "{ viewer { user { id } } }", json!({})).await;
        let user_id = me["viewer"]["user"]["id"].as_str().unwrap().to_string();
        // 100 newer sessions, as 100 sign-ins elsewhere would leave (inserted: a sign-in hashes
        // the password, which takes a while in a debug build).
        let now = app.clock.now_ms();
        let values: Vec<String> = (0..100)
            .map(|i| {
                format!(
                    "('ses_many{i:03}', '{user_id}', 'th_many{i}', 'rh_many{i}', {}, {}, NULL, {})",
                    now + 3_600_000,
                    now + 86_400_000,
                    now + 1000 + i
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO sessions (id, user_id, token_hash, refresh_hash, expires_at, refresh_expires_at, revoked_at, created_at) VALUES {}",
            values.join(", ")
        );
        crate::common::execute_sql(&app, &sql).await;

        let listed = app.gql_ok(Some(&a.token), "{ sessions { id current } }", json!({})).await;
        let sessions = listed["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 100, "[{backend:?}]");
        assert_eq!(sessions[0]["id"], "ses_many099", "newest first");
        assert_eq!(sessions[98]["id"], "ses_many001");
        assert_eq!(sessions[99]["current"], true, "[{backend:?}] the asking session is listed last: {}", sessions[99]);
        assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    }
}

/// The scope vocabulary is listed with words and the roles that hold each scope, from the same
/// matrix the server enforces: a key of a role's scopes can be granted exactly those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scope_vocabulary_names_each_scope_and_the_roles_holding_it() {
    let app = TestApp::new(crate::common::Backend::SqliteMemory).await;
    let a = app.register("scopes@example.com").await;
    let r = app.gql_ok(Some(&a.token), "{ scopes { name description roles } }", json!({})).await;
    let scopes = r["scopes"].as_array().unwrap();
    assert_eq!(scopes.len(), 20, "{r}");
    let row = |name: &str| scopes.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("{name} in {r}")).clone();
    assert_eq!(row("keys:read")["roles"], json!(["OWNER", "ADMIN", "MEMBER", "BILLING", "VIEWER"]));
    assert_eq!(row("billing:write")["roles"], json!(["OWNER", "ADMIN", "BILLING"]));
    assert_eq!(row("org:write")["roles"], json!(["OWNER", "ADMIN"]));
    assert!(scopes.iter().all(|s| !s["description"].as_str().unwrap().is_empty()));
    // Each listed name is one the API accepts for a key.
    let names: Vec<&str> = scopes.iter().map(|s| s["name"].as_str().unwrap()).collect();
    let created = app
        .gql(
            Some(&a.token),
            "mutation($s: [String!]!) { createApiKey(input: {name: \"all\", scopes: $s}) { apiKey { scopes } } }",
            json!({ "s": names }),
        )
        .await;
    assert!(created.get("errors").is_none(), "{created}");
    let anonymous = app.gql(None, "{ scopes { name } }", json!({})).await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
}
