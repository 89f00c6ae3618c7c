//! The OAuth 2.0 authorization server, driven by the `oauth2` crate as a real RFC 6749 client
//! (its requests and its parsing of the answers; the transport is reqwest) plus plain HTTP for
//! the negative cases: the code flow with PKCE for confidential and public clients, refresh
//! rotation and reuse detection, client credentials, revocation, introspection, metadata, and an
//! access token calling the API as the app, limited to its scopes and the installing organization.

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use serde_json::{Value, json};

use crate::common::{Session, TestApp, backends, code};

const REDIRECT: &str = "https://app.example.com/callback";

/// The `oauth2` crate's HTTP transport: the request it built, sent with reqwest.
async fn send(req: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let (parts, body) = req.into_parts();
    let resp = reqwest::Client::new()
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut out = oauth2::http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    Ok(out.body(resp.bytes().await?.to_vec()).expect("response"))
}

struct Fixture {
    app: TestApp,
    admin: Session,
    dev: Session,
    /// A user installing the app into their own organization.
    user: Session,
    app_id: String,
    secret: Option<String>,
}

async fn fixture(backend: crate::common::Backend, client_type: &str) -> Fixture {
    let app = TestApp::new(backend).await;
    let admin = app.register("admin@example.com").await;
    app.lift_starter_limits(&admin.token).await;
    let dev = app.register("dev@example.com").await;
    let user = app.register("user@example.com").await;
    let r = app
        .gql_ok(
            Some(&dev.token),
            "mutation($i: CreateAppInput!) { createApp(input: $i) { clientSecret app { id } } }",
            json!({ "i": {
                "name": "Reporter", "description": "Reads your keys and usage", "category": "ANALYTICS",
                "requestedScopes": ["keys:read", "usage:read"], "redirectUris": [REDIRECT], "clientType": client_type,
            } }),
        )
        .await;
    let app_id = r["createApp"]["app"]["id"].as_str().unwrap().to_string();
    let secret = r["createApp"]["clientSecret"].as_str().map(str::to_string);
    for (who, m) in [(&dev, "submitApp"), (&admin, "approveApp"), (&dev, "publishApp")] {
        app.gql_ok(
            Some(&who.token),
            &format!("mutation($id: ID!) {{ {m}(id: $id) {{ status }} }}"),
            json!({ "id": app_id }),
        )
        .await;
    }
    Fixture { app, admin, dev, user, app_id, secret }
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

/// The user's consent to an authorization request URL the client built; returns the redirect.
async fn consent(f: &Fixture, authorize_url: &str, extra: Value) -> String {
    let q = query_of(authorize_url);
    let mut input = json!({
        "clientId": q["client_id"], "redirectUri": q.get("redirect_uri"), "scope": q.get("scope"),
        "state": q.get("state"), "codeChallenge": q.get("code_challenge"), "codeChallengeMethod": q.get("code_challenge_method"),
    });
    for (k, v) in extra.as_object().unwrap() {
        input[k] = v.clone();
    }
    let r = f
        .app
        .gql_ok(
            Some(&f.user.token),
            "mutation($i: AuthorizeAppInput!) { authorizeApp(input: $i) { redirectTo installation { id scopes } } }",
            json!({ "i": input }),
        )
        .await;
    r["authorizeApp"]["redirectTo"].as_str().unwrap().to_string()
}

async fn form_post(
    app: &TestApp,
    path: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let mut req = app.http.post(app.url(path)).header("content-type", "application/x-www-form-urlencoded").body(body);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

fn grant_error<T: std::fmt::Debug>(
    r: Result<T, RequestTokenError<reqwest::Error, oauth2::StandardErrorResponse<BasicErrorResponseType>>>,
) -> BasicErrorResponseType {
    match r {
        Err(RequestTokenError::ServerResponse(e)) => e.error().clone(),
        other => panic!("expected an OAuth error response, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confidential_client_completes_the_code_flow_refreshes_and_calls_the_api_as_the_app() {
    for backend in backends() {
        let f = fixture(backend, "CONFIDENTIAL").await;
        let client = BasicClient::new(ClientId::new(f.app_id.clone()))
            .set_client_secret(ClientSecret::new(f.secret.clone().unwrap()))
            .set_auth_uri(AuthUrl::new(f.app.url("/oauth/authorize")).unwrap())
            .set_token_uri(TokenUrl::new(f.app.url("/oauth/token")).unwrap())
            .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, csrf) = client
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("keys:read".into()))
            .set_pkce_challenge(challenge)
            .url();
        let redirect = consent(&f, url.as_str(), json!({})).await;
        let back = query_of(&redirect);
        assert!(redirect.starts_with(REDIRECT), "{redirect}");
        assert_eq!(back["state"], *csrf.secret(), "[{backend:?}] state round trip");
        let first_code = back["code"].clone();

        let tokens = client
            .exchange_code(AuthorizationCode::new(first_code.clone()))
            .set_pkce_verifier(verifier)
            .request_async(&send)
            .await;
        let tokens = tokens.unwrap_or_else(|e| panic!("[{backend:?}] exchange failed: {e:?}"));
        let access = tokens.access_token().secret().clone();
        let refresh = tokens.refresh_token().unwrap().secret().clone();
        assert!(access.starts_with("gko_at_") && refresh.starts_with("gko_rt_"), "{access} {refresh}");
        assert_eq!(tokens.expires_in().unwrap().as_secs(), 3600);
        assert_eq!(tokens.scopes().unwrap().iter().map(|s| s.to_string()).collect::<Vec<_>>(), ["keys:read"]);

        // The token is the app on the installing organization, with the granted scope only.
        let r = f
            .app
            .gql_ok(Some(&access), "{ viewer { id kind scopes app { id } } apiKeys { totalCount } }", json!({}))
            .await;
        assert_eq!(r["viewer"]["kind"], "OAUTH_APP", "[{backend:?}] {r}");
        assert_eq!(r["viewer"]["id"], f.app_id.as_str());
        assert_eq!(r["viewer"]["app"]["id"], f.app_id.as_str());
        assert_eq!(r["viewer"]["scopes"], json!(["keys:read"]));
        let r = f.app.gql(Some(&access), "{ usage { start } }", json!({})).await;
        assert_eq!(code(&r), "FORBIDDEN", "[{backend:?}] usage:read was not granted: {r}");
        let r = f
            .app
            .gql(
                Some(&access),
                "mutation { createApiKey(input: {name: \"x\", scopes: [\"keys:read\"]}) { secret } }",
                json!({}),
            )
            .await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
        // Another organization's ids are NOT_FOUND, as for any credential of this one.
        let (_, dev_key) = f.app.create_key(&f.dev.token, &["keys:read"]).await;
        let r = f.app.gql(Some(&access), "query($id: ID!) { apiKey(id: $id) { id } }", json!({ "id": dev_key })).await;
        assert_eq!(code(&r), "NOT_FOUND", "[{backend:?}] {r}");
        let (status, body) = f.app.rest("GET", "/keys", Some(&access), None).await;
        assert_eq!(status, 200, "[{backend:?}] REST serves the token too: {body}");

        // The code is single use: a replay is invalid_grant and revokes what it issued.
        let replay = client
            .exchange_code(AuthorizationCode::new(first_code))
            .set_pkce_verifier(oauth2::PkceCodeVerifier::new("x".repeat(43)))
            .request_async(&send)
            .await;
        assert_eq!(grant_error(replay), BasicErrorResponseType::InvalidGrant);
        let r = f.app.gql(Some(&access), "{ viewer { id } }", json!({})).await;
        assert_eq!(code(&r), "UNAUTHENTICATED", "[{backend:?}] a replayed code revokes its tokens: {r}");
        let old_refresh = client.exchange_refresh_token(&RefreshToken::new(refresh)).request_async(&send).await;
        assert_eq!(grant_error(old_refresh), BasicErrorResponseType::InvalidGrant);

        // A fresh authorization: refresh rotates, and a used refresh token revokes the grant.
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, _) = client.authorize_url(CsrfToken::new_random).set_pkce_challenge(challenge).url();
        let back = query_of(&consent(&f, url.as_str(), json!({})).await);
        let tokens = client
            .exchange_code(AuthorizationCode::new(back["code"].clone()))
            .set_pkce_verifier(verifier)
            .request_async(&send)
            .await
            .unwrap();
        assert_eq!(tokens.scopes().unwrap().len(), 2, "no scope asked: every requested scope");
        let first_refresh = tokens.refresh_token().unwrap().clone();
        let rotated = client.exchange_refresh_token(&first_refresh).request_async(&send).await.unwrap();
        assert_ne!(rotated.refresh_token().unwrap().secret(), first_refresh.secret());
        let new_access = rotated.access_token().secret().clone();
        f.app.gql_ok(Some(&new_access), "{ viewer { id } }", json!({})).await;
        let reuse = client.exchange_refresh_token(&first_refresh).request_async(&send).await;
        assert_eq!(grant_error(reuse), BasicErrorResponseType::InvalidGrant);
        let r = f.app.gql(Some(&new_access), "{ viewer { id } }", json!({})).await;
        assert_eq!(code(&r), "UNAUTHENTICATED", "[{backend:?}] reuse revokes the whole grant: {r}");
        let after = client.exchange_refresh_token(rotated.refresh_token().unwrap()).request_async(&send).await;
        assert_eq!(grant_error(after), BasicErrorResponseType::InvalidGrant);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_must_use_s256_pkce() {
    for backend in backends() {
        let f = fixture(backend, "PUBLIC").await;
        assert_eq!(f.secret, None);
        let client = BasicClient::new(ClientId::new(f.app_id.clone()))
            .set_auth_uri(AuthUrl::new(f.app.url("/oauth/authorize")).unwrap())
            .set_token_uri(TokenUrl::new(f.app.url("/oauth/token")).unwrap())
            .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
        // Without PKCE, or with `plain`, the request is redirected back with invalid_request.
        let (url, _) = client.authorize_url(CsrfToken::new_random).url();
        let back = query_of(&consent(&f, url.as_str(), json!({})).await);
        assert_eq!(back["error"], "invalid_request", "[{backend:?}] {back:?}");
        let (url, _) = client.authorize_url(CsrfToken::new_random).url();
        let back = query_of(
            &consent(&f, url.as_str(), json!({ "codeChallenge": "a".repeat(43), "codeChallengeMethod": "plain" }))
                .await,
        );
        assert_eq!(back["error"], "invalid_request", "{back:?}");
        assert!(back["error_description"].contains("plain"), "{back:?}");

        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, _) = client.authorize_url(CsrfToken::new_random).set_pkce_challenge(challenge).url();
        let code = query_of(&consent(&f, url.as_str(), json!({})).await)["code"].clone();
        // A missing or wrong verifier is invalid_grant, and leaves the code usable with the right one.
        let (status, headers, body) = form_post(
            &f.app,
            "/oauth/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", &f.app_id),
            ],
        )
        .await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "[{backend:?}] {body}");
        assert_eq!(headers["cache-control"], "no-store");
        let wrong = client
            .exchange_code(AuthorizationCode::new(code.clone()))
            .set_pkce_verifier(oauth2::PkceCodeVerifier::new("w".repeat(43)))
            .request_async(&send)
            .await;
        assert_eq!(grant_error(wrong), BasicErrorResponseType::InvalidGrant);
        let tokens =
            client.exchange_code(AuthorizationCode::new(code)).set_pkce_verifier(verifier).request_async(&send).await;
        let tokens = tokens.unwrap_or_else(|e| panic!("[{backend:?}] {e:?}"));
        f.app.gql_ok(Some(tokens.access_token().secret()), "{ viewer { kind } }", json!({})).await;
        // A public client has no client credentials grant.
        let (status, _, body) =
            form_post(&f.app, "/oauth/token", None, &[("grant_type", "client_credentials"), ("client_id", &f.app_id)])
                .await;
        assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_rfc_errors_and_are_never_redirected_to_unregistered_uris() {
    for backend in backends() {
        let f = fixture(backend, "CONFIDENTIAL").await;
        let secret = f.secret.clone().unwrap();
        let m = "mutation($i: AuthorizeAppInput!) { authorizeApp(input: $i) { redirectTo } }";
        // Unknown client, unregistered redirect URI: an error, no redirect.
        let r = f
            .app
            .gql(
                Some(&f.user.token),
                m,
                json!({ "i": { "clientId": "app_01jdxq3z8m0000000000000000", "redirectUri": REDIRECT } }),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "[{backend:?}] {r}");
        let r = f
            .app
            .gql(
                Some(&f.user.token),
                m,
                json!({ "i": { "clientId": f.app_id, "redirectUri": "https://evil.example.com/cb" } }),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
        assert!(!r.to_string().contains("evil.example.com/cb?"), "never redirected: {r}");
        let r = f
            .app
            .gql(
                Some(&f.user.token),
                m,
                json!({ "i": { "clientId": f.app_id, "redirectUri": format!("{REDIRECT}/") } }),
            )
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "exact matching only: {r}");
        // A scope the app does not request: redirected with invalid_scope and the state.
        let r = f
            .app
            .gql_ok(
                Some(&f.user.token),
                m,
                json!({ "i": { "clientId": f.app_id, "scope": "keys:write", "state": "s1" } }),
            )
            .await;
        let back = query_of(r["authorizeApp"]["redirectTo"].as_str().unwrap());
        assert_eq!((back["error"].as_str(), back["state"].as_str()), ("invalid_scope", "s1"), "[{backend:?}] {back:?}");
        // Denied: access_denied, no installation.
        let r = f
            .app
            .gql_ok(Some(&f.user.token), m, json!({ "i": { "clientId": f.app_id, "state": "s2", "approve": false } }))
            .await;
        let back = query_of(r["authorizeApp"]["redirectTo"].as_str().unwrap());
        assert_eq!((back["error"].as_str(), back["state"].as_str()), ("access_denied", "s2"));
        let r = f.app.gql_ok(Some(&f.user.token), "{ installedApps { id } }", json!({})).await;
        assert_eq!(r["installedApps"], json!([]));
        // API keys do not consent.
        let (key, _) = f.app.create_key(&f.user.token, &["*"]).await;
        let r = f.app.gql(Some(&key), m, json!({ "i": { "clientId": f.app_id } })).await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");

        // Client authentication: a wrong secret is invalid_client, 401 with WWW-Authenticate.
        let r = f.app.gql_ok(Some(&f.user.token), m, json!({ "i": { "clientId": f.app_id } })).await;
        let code_value = query_of(r["authorizeApp"]["redirectTo"].as_str().unwrap())["code"].clone();
        let exchange =
            [("grant_type", "authorization_code"), ("code", code_value.as_str()), ("redirect_uri", REDIRECT)];
        let (status, headers, body) =
            form_post(&f.app, "/oauth/token", Some((&f.app_id, "gko_cs_wrong")), &exchange).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "[{backend:?}] {body}");
        assert!(headers["www-authenticate"].to_str().unwrap().starts_with("Basic"), "{headers:?}");
        let (status, _, body) = form_post(&f.app, "/oauth/token", None, &exchange).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "no credentials: {body}");
        // The redirect URI must match the authorization request (here: none was named, the one registered was used).
        let (status, _, body) = form_post(
            &f.app,
            "/oauth/token",
            Some((&f.app_id, &secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code_value),
                ("redirect_uri", "https://app.example.com/other"),
            ],
        )
        .await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
        // Codes expire after 60 seconds.
        f.app.clock.advance_ms(61_000);
        let (status, _, body) = form_post(&f.app, "/oauth/token", Some((&f.app_id, &secret)), &exchange).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "[{backend:?}] expired: {body}");
        assert!(body["error_description"].as_str().unwrap().contains("expired"), "{body}");
        // Unknown grant types, missing fields, a JSON body.
        let (status, _, body) =
            form_post(&f.app, "/oauth/token", Some((&f.app_id, &secret)), &[("grant_type", "password")]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("unsupported_grant_type")), "{body}");
        let (status, _, body) = form_post(&f.app, "/oauth/token", Some((&f.app_id, &secret)), &[]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
        let resp = f
            .app
            .http
            .post(f.app.url("/oauth/token"))
            .json(&json!({ "grant_type": "client_credentials" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{body}");

        // Client credentials: the app on its owner organization, within its requested scopes.
        let (status, headers, body) = form_post(
            &f.app,
            "/oauth/token",
            Some((&f.app_id, &secret)),
            &[("grant_type", "client_credentials"), ("scope", "usage:read")],
        )
        .await;
        assert_eq!(status, 200, "[{backend:?}] {body}");
        assert_eq!(headers["cache-control"], "no-store");
        assert!(body.get("refresh_token").is_none(), "{body}");
        let token = body["access_token"].as_str().unwrap().to_string();
        let r = f.app.gql_ok(Some(&token), "{ viewer { kind scopes } }", json!({})).await;
        assert_eq!(r["viewer"]["kind"], "OAUTH_APP");
        assert_eq!(r["viewer"]["scopes"], json!(["usage:read"]));
        let (status, _, body) = form_post(
            &f.app,
            "/oauth/token",
            Some((&f.app_id, &secret)),
            &[("grant_type", "client_credentials"), ("scope", "billing:read")],
        )
        .await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_introspection_metadata_and_uninstall_stop_tokens_on_every_surface() {
    for backend in backends() {
        let f = fixture(backend, "CONFIDENTIAL").await;
        let secret = f.secret.clone().unwrap();
        let (status, _, meta) = {
            let resp = f.app.http.get(f.app.url("/.well-known/oauth-authorization-server")).send().await.unwrap();
            (resp.status().as_u16(), (), resp.json::<Value>().await.unwrap())
        };
        assert_eq!(status, 200);
        let issuer = meta["issuer"].as_str().unwrap().to_string();
        assert_eq!(meta["token_endpoint"], format!("{issuer}/oauth/token"));
        assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
        assert!(meta["grant_types_supported"].as_array().unwrap().contains(&json!("refresh_token")));
        assert!(meta["revocation_endpoint"].is_string() && meta["introspection_endpoint"].is_string());

        let issue = |scope: &'static str| {
            let f = &f;
            async move {
                let m =
                    "mutation($i: AuthorizeAppInput!) { authorizeApp(input: $i) { redirectTo installation { id } } }";
                let r = f
                    .app
                    .gql_ok(Some(&f.user.token), m, json!({ "i": { "clientId": f.app_id, "scope": scope } }))
                    .await;
                let code = query_of(r["authorizeApp"]["redirectTo"].as_str().unwrap())["code"].clone();
                let secret = f.secret.clone().unwrap();
                let (status, _, body) = form_post(
                    &f.app,
                    "/oauth/token",
                    None,
                    &[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", REDIRECT),
                        ("client_id", &f.app_id),
                        ("client_secret", &secret),
                    ],
                )
                .await;
                assert_eq!(status, 200, "client_secret_post: {body}");
                (body, r["authorizeApp"]["installation"]["id"].as_str().unwrap().to_string())
            }
        };
        let (tokens, installation) = issue("keys:read").await;
        let access = tokens["access_token"].as_str().unwrap().to_string();
        let refresh = tokens["refresh_token"].as_str().unwrap().to_string();

        // Introspection (client-authenticated): what the token is; nothing for other clients.
        let (status, _, body) =
            form_post(&f.app, "/oauth/introspect", Some((&f.app_id, &secret)), &[("token", &access)]).await;
        assert_eq!(status, 200);
        assert_eq!(body["active"], true, "[{backend:?}] {body}");
        assert_eq!(body["scope"], "keys:read");
        assert_eq!(body["client_id"], f.app_id.as_str());
        assert_eq!(body["sub"], f.user.user_id.as_str());
        assert_eq!(body["organization_id"], f.user.org_id.as_str());
        assert!(body["exp"].as_i64().unwrap() > body["iat"].as_i64().unwrap());
        let (status, _, _) = form_post(&f.app, "/oauth/introspect", None, &[("token", &access)]).await;
        assert_eq!(status, 401);

        // A re-consent with more scopes widens the installation.
        let (more, again) = issue("usage:read").await;
        assert_eq!(again, installation, "one installation per organization and app");
        let r = f
            .app
            .gql_ok(Some(&f.user.token), "{ installedApps { id scopes app { id installCount } } }", json!({}))
            .await;
        assert_eq!(r["installedApps"][0]["scopes"], json!(["keys:read", "usage:read"]), "[{backend:?}] {r}");
        assert_eq!(r["installedApps"][0]["app"]["installCount"], 1);

        // Revoking the refresh token takes its whole grant; unknown tokens are 200 too.
        let (status, _, _) =
            form_post(&f.app, "/oauth/revoke", Some((&f.app_id, &secret)), &[("token", &refresh)]).await;
        assert_eq!(status, 200);
        let r = f.app.gql(Some(&access), "{ viewer { id } }", json!({})).await;
        assert_eq!(code(&r), "UNAUTHENTICATED", "[{backend:?}] {r}");
        let (status, _, body) =
            form_post(&f.app, "/oauth/introspect", Some((&f.app_id, &secret)), &[("token", &access)]).await;
        assert_eq!((status, body.clone()), (200, json!({ "active": false })), "{body}");
        let (status, _, _) =
            form_post(&f.app, "/oauth/revoke", Some((&f.app_id, &secret)), &[("token", "gko_at_unknown")]).await;
        assert_eq!(status, 200);

        // Uninstalling ends the other grant at once: GraphQL, REST, and the WebSocket refuse it.
        let other_access = more["access_token"].as_str().unwrap().to_string();
        f.app.gql_ok(Some(&other_access), "{ viewer { id } }", json!({})).await;
        let r = f
            .app
            .gql(
                Some(&f.dev.token),
                "mutation($id: ID!) { uninstallApp(id: $id) { installation { id } } }",
                json!({ "id": installation }),
            )
            .await;
        assert_eq!(code(&r), "NOT_FOUND", "another organization's installation: {r}");
        f.app
            .gql_ok(
                Some(&f.user.token),
                "mutation($id: ID!) { uninstallApp(id: $id) { installation { uninstalledAt } } }",
                json!({ "id": installation }),
            )
            .await;
        let (status, body) = f.app.gql_status(Some(&other_access), "{ viewer { id } }", json!({})).await;
        assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "[{backend:?}] {body}");
        let (status, _) = f.app.rest("GET", "/keys", Some(&other_access), None).await;
        assert_eq!(status, 401);
        let mut socket = crate::common::ws::connect(&f.app.ws_url(), "graphql-transport-ws").await;
        crate::common::ws::send(
            &mut socket,
            json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {other_access}") } }),
        )
        .await;
        let refused = crate::common::ws::next(&mut socket).await;
        assert!(refused.is_err() || refused.as_ref().unwrap()["type"] != "connection_ack", "[{backend:?}] {refused:?}");
        let r =
            f.app.gql_ok(None, "query($id: ID!) { app(id: $id) { installCount } }", json!({ "id": f.app_id })).await;
        assert_eq!(r["app"]["installCount"], 0);
        let _ = &f.admin;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_refreshes_of_one_token_at_once_never_leave_two_live_pairs() {
    for backend in backends() {
        let f = fixture(backend, "CONFIDENTIAL").await;
        let secret = f.secret.clone().unwrap();
        let m = "mutation($i: AuthorizeAppInput!) { authorizeApp(input: $i) { redirectTo } }";
        let r = f.app.gql_ok(Some(&f.user.token), m, json!({ "i": { "clientId": f.app_id } })).await;
        let code = query_of(r["authorizeApp"]["redirectTo"].as_str().unwrap())["code"].clone();
        let (_, _, tokens) = form_post(
            &f.app,
            "/oauth/token",
            Some((&f.app_id, &secret)),
            &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)],
        )
        .await;
        let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
        let fields = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
        let attempt = || form_post(&f.app, "/oauth/token", Some((&f.app_id, &secret)), &fields);
        let (a, b) = tokio::join!(attempt(), attempt());
        let outcomes = [a, b];
        let won: Vec<&Value> = outcomes.iter().filter(|o| o.0 == 200).map(|o| &o.2).collect();
        assert!(won.len() <= 1, "[{backend:?}] at most one new pair: {outcomes:?}");
        assert!(
            outcomes.iter().any(|o| o.0 == 400 && o.2["error"] == "invalid_grant"),
            "[{backend:?}] the other is reuse: {outcomes:?}"
        );
        assert!(outcomes.iter().all(|o| o.0 == 200 || o.0 == 400), "never a 500: {outcomes:?}");
        // Whatever was issued is dead: reuse revoked the grant.
        for t in won {
            let access = t["access_token"].as_str().unwrap();
            let (_, _, body) =
                form_post(&f.app, "/oauth/introspect", Some((&f.app_id, &secret)), &[("token", access)]).await;
            assert_eq!(body["active"], false, "[{backend:?}] {body}");
        }
    }
}

/// A browser's visit: cookies kept by hand, redirects not followed, forms posted as sent.
struct Browser {
    http: reqwest::Client,
    cookies: std::collections::BTreeMap<String, String>,
}

impl Browser {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            cookies: Default::default(),
        }
    }

    fn keep(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            assert!(v.contains("HttpOnly") && v.contains("SameSite=Lax"), "{v}");
            let (k, val) = v.split(';').next().unwrap().split_once('=').unwrap();
            self.cookies.insert(k.to_string(), val.to_string());
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn get(&mut self, url: &str) -> (u16, Option<String>, String) {
        let resp = self.http.get(url).header("cookie", self.cookie_header()).send().await.unwrap();
        self.keep(&resp);
        let location = resp.headers().get("location").map(|l| l.to_str().unwrap().to_string());
        (resp.status().as_u16(), location, resp.text().await.unwrap())
    }

    async fn post(&mut self, url: &str, form: &[(String, String)]) -> (u16, Option<String>, String) {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let resp = self
            .http
            .post(url)
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        let location = resp.headers().get("location").map(|l| l.to_str().unwrap().to_string());
        (resp.status().as_u16(), location, resp.text().await.unwrap())
    }
}

/// The hidden and visible fields of the page's form, as a browser would submit them.
fn form_fields(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for tag in html.split('<').filter(|t| t.starts_with("input ")) {
        let attr = |name: &str| {
            tag.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .map(|v| v.replace("&#38;", "&").replace("&amp;", "&"))
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            out.push((n, v));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_and_consent_pages_work_the_way_a_browser_uses_them() {
    for backend in backends() {
        let f = fixture(backend, "CONFIDENTIAL").await;
        let mut b = Browser::new();
        let authorize = format!(
            "{}?response_type=code&client_id={}&redirect_uri={}&scope=keys%3Aread&state=st%26ate",
            f.app.url("/oauth/authorize"),
            f.app_id,
            url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
        );
        // Unknown client and unregistered redirect URI: an error page, no redirect.
        let (status, location, html) =
            b.get(&f.app.url("/oauth/authorize?response_type=code&client_id=app_01jdxq3z8m0000000000000000")).await;
        assert_eq!((status, location), (400, None), "[{backend:?}]");
        assert!(html.contains("not known"), "{html}");
        let (status, location, _) = b.get(&authorize.replace("app.example.com", "evil.example.com")).await;
        assert_eq!((status, location), (400, None), "never redirected to an unregistered URI");

        // No session: the login page, with a CSRF token matching its cookie.
        let (status, _, html) = b.get(&authorize).await;
        assert_eq!(status, 200);
        assert!(html.contains("Sign in to continue to Reporter"), "{html}");
        let mut form = form_fields(&html);
        assert_eq!(
            form.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.clone()),
            b.cookies.get("gantry_csrf").cloned()
        );
        // A forged form (no matching CSRF token) is refused.
        let forged: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| if k == "csrf" { (k.clone(), "x".repeat(32)) } else { (k.clone(), v.clone()) })
            .collect();
        let (status, _, _) = b.post(&f.app.url("/oauth/authorize"), &forged).await;
        assert_eq!(status, 400);
        // A wrong password shows the login page again.
        form.push(("email".into(), "user@example.com".into()));
        let mut wrong = form.clone();
        wrong.push(("password".into(), "not the password".into()));
        let (status, _, html) = b.post(&f.app.url("/oauth/authorize"), &wrong).await;
        assert_eq!(status, 401, "{html}");
        assert!(html.contains("role=\"alert\""), "{html}");
        form.push(("password".into(), "correct horse battery".into()));
        let (status, location, _) = b.post(&f.app.url("/oauth/authorize"), &form).await;
        assert_eq!(status, 303, "[{backend:?}]");
        assert!(b.cookies.contains_key("gantry_oauth_session"));

        // Signed in: the consent page names the app, its scopes in words and where to install it.
        let (status, _, html) = b.get(&f.app.url(location.as_deref().unwrap())).await;
        assert_eq!(status, 200);
        assert!(html.contains("Reporter wants access") && html.contains("See your API keys"), "{html}");
        assert!(html.contains(&format!("value=\"{}\"", f.user.org_id)), "the user's organization is offered: {html}");
        let mut consent = form_fields(&html);
        consent.push(("organization_id".into(), f.user.org_id.clone()));
        let mut deny = consent.clone();
        deny.push(("action".into(), "deny".into()));
        let (status, location, _) = b.post(&f.app.url("/oauth/authorize"), &deny).await;
        assert_eq!(status, 303);
        let back = query_of(location.as_deref().unwrap());
        assert_eq!(
            (back["error"].as_str(), back["state"].as_str()),
            ("access_denied", "st&ate"),
            "[{backend:?}] {back:?}"
        );
        consent.push(("action".into(), "approve".into()));
        let (status, location, _) = b.post(&f.app.url("/oauth/authorize"), &consent).await;
        assert_eq!(status, 303);
        let location = location.unwrap();
        assert!(location.starts_with(REDIRECT), "{location}");
        let back = query_of(&location);
        assert_eq!(back["state"], "st&ate", "the state comes back unchanged");
        let (status, _, body) = form_post(
            &f.app,
            "/oauth/token",
            Some((&f.app_id, f.secret.as_deref().unwrap())),
            &[("grant_type", "authorization_code"), ("code", &back["code"]), ("redirect_uri", REDIRECT)],
        )
        .await;
        assert_eq!(status, 200, "[{backend:?}] {body}");
        assert_eq!(body["scope"], "keys:read");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_with_an_access_token_are_metered_as_the_app_and_its_owner_sees_the_analytics() {
    for backend in backends() {
        let f = fixture(backend, "CONFIDENTIAL").await;
        let secret = f.secret.clone().unwrap();
        let m = "mutation($i: AuthorizeAppInput!) { authorizeApp(input: $i) { redirectTo installation { id } } }";
        let r = f.app.gql_ok(Some(&f.user.token), m, json!({ "i": { "clientId": f.app_id } })).await;
        let installation = r["authorizeApp"]["installation"]["id"].as_str().unwrap().to_string();
        let grant_code = query_of(r["authorizeApp"]["redirectTo"].as_str().unwrap())["code"].clone();
        let (_, _, tokens) = form_post(
            &f.app,
            "/oauth/token",
            Some((&f.app_id, &secret)),
            &[("grant_type", "authorization_code"), ("code", &grant_code), ("redirect_uri", REDIRECT)],
        )
        .await;
        let access = tokens["access_token"].as_str().unwrap().to_string();
        for _ in 0..4 {
            f.app.gql_ok(Some(&access), "{ apiKeys { totalCount } }", json!({})).await;
        }
        let r = f.app.gql(Some(&access), "{ webhookEndpoints { totalCount } }", json!({})).await;
        assert_eq!(code(&r), "FORBIDDEN", "not granted: {r}");
        let (status, _) = f.app.rest("GET", "/keys", Some(&access), None).await;
        assert_eq!(status, 200);
        // Over WebSocket too, as the app.
        let mut socket = crate::common::ws::connect_authed(&f.app.ws_url(), &access).await;
        crate::common::ws::send(
            &mut socket,
            json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ viewer { kind } }" } }),
        )
        .await;
        let next = crate::common::ws::next(&mut socket).await.unwrap();
        assert_eq!(next["payload"]["data"]["viewer"]["kind"], "OAUTH_APP", "[{backend:?}] {next}");
        drop(socket);
        gantry::server::flush(&f.app.app).await;

        // In the installing organization: usage per app, and not among the keys.
        let r = f
            .app
            .gql_ok(
                Some(&f.user.token),
                "{ usageByApp { appId appName stats { calls errors } } usageByKey { keyId } }",
                json!({}),
            )
            .await;
        assert_eq!(r["usageByApp"][0]["appId"], f.app_id.as_str(), "[{backend:?}] {r}");
        assert_eq!(r["usageByApp"][0]["appName"], "Reporter", "[{backend:?}] {r}");
        assert_eq!(r["usageByApp"][0]["stats"]["calls"], 7, "[{backend:?}] 4 + 1 refused + 1 REST + 1 WebSocket: {r}");
        assert_eq!(r["usageByApp"][0]["stats"]["errors"], 1);
        assert!(!r["usageByKey"].to_string().contains(&f.app_id), "{r}");

        // The owner's analytics; nobody else's to read.
        let q = "query($id: ID!) { app(id: $id) { analytics { installs uninstalls activeInstallations apiCalls apiErrors newReviews } } }";
        let r = f.app.gql_ok(Some(&f.dev.token), q, json!({ "id": f.app_id })).await;
        assert_eq!(
            r["app"]["analytics"],
            json!({ "installs": 1, "uninstalls": 0, "activeInstallations": 1, "apiCalls": 7, "apiErrors": 1, "newReviews": 0 }),
            "[{backend:?}]"
        );
        let r = f.app.gql(Some(&f.user.token), q, json!({ "id": f.app_id })).await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
        f.app
            .gql_ok(
                Some(&f.user.token),
                "mutation($id: ID!) { uninstallApp(id: $id) { installation { id } } }",
                json!({ "id": installation }),
            )
            .await;
        let r = f.app.gql_ok(Some(&f.dev.token), q, json!({ "id": f.app_id })).await;
        assert_eq!(r["app"]["analytics"]["uninstalls"], 1);
        assert_eq!(r["app"]["analytics"]["activeInstallations"], 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_own_limit_tightens_the_plan_and_deprecation_ends_every_installation() {
    for backend in backends() {
        let f = fixture(backend, "CONFIDENTIAL").await;
        let secret = f.secret.clone().unwrap();
        f.app
            .gql_ok(
                Some(&f.dev.token),
                "mutation($id: ID!) { updateApp(id: $id, input: {rateLimit: {perSecond: 2, burst: 0}}) { id } }",
                json!({ "id": f.app_id }),
            )
            .await;
        let (_, _, tokens) =
            form_post(&f.app, "/oauth/token", Some((&f.app_id, &secret)), &[("grant_type", "client_credentials")])
                .await;
        let cc = tokens["access_token"].as_str().unwrap().to_string();
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(f.app.gql_status(Some(&cc), "{ viewer { id } }", json!({})).await.0);
        }
        assert!(statuses.contains(&429), "[{backend:?}] the app's 2/s holds: {statuses:?}");

        let m = "mutation($i: AuthorizeAppInput!) { authorizeApp(input: $i) { redirectTo } }";
        let r = f.app.gql_ok(Some(&f.user.token), m, json!({ "i": { "clientId": f.app_id } })).await;
        let grant_code = query_of(r["authorizeApp"]["redirectTo"].as_str().unwrap())["code"].clone();
        let (_, _, tokens) = form_post(
            &f.app,
            "/oauth/token",
            Some((&f.app_id, &secret)),
            &[("grant_type", "authorization_code"), ("code", &grant_code), ("redirect_uri", REDIRECT)],
        )
        .await;
        let access = tokens["access_token"].as_str().unwrap().to_string();
        f.app.clock.advance_ms(2_000);
        f.app.gql_ok(Some(&access), "{ viewer { id } }", json!({})).await;
        f.app
            .gql_ok(
                Some(&f.dev.token),
                "mutation($id: ID!) { deprecateApp(id: $id) { status } }",
                json!({ "id": f.app_id }),
            )
            .await;
        let r = f.app.gql(Some(&access), "{ viewer { id } }", json!({})).await;
        assert_eq!(code(&r), "UNAUTHENTICATED", "[{backend:?}] {r}");
        let r = f.app.gql_ok(Some(&f.user.token), "{ installedApps { id } }", json!({})).await;
        assert_eq!(r["installedApps"], json!([]));
        let (status, _, body) =
            form_post(&f.app, "/oauth/token", Some((&f.app_id, &secret)), &[("grant_type", "client_credentials")])
                .await;
        assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_a_client_secret_is_rate_limited_per_address() {
    for backend in backends() {
        let f = fixture(backend, "CONFIDENTIAL").await;
        let mut statuses = Vec::new();
        for i in 0..40 {
            let guess = format!("gko_cs_guess{i}");
            let (status, headers, body) =
                form_post(&f.app, "/oauth/token", Some((&f.app_id, &guess)), &[("grant_type", "client_credentials")])
                    .await;
            if status == 429 {
                assert_eq!(body["error"], "slow_down", "{body}");
                assert!(headers.contains_key("retry-after"));
            }
            statuses.push(status);
        }
        assert_eq!(statuses[0], 401);
        assert_eq!(*statuses.last().unwrap(), 429, "[{backend:?}] {statuses:?}");
        // The right secret is still served: its client is limited under its owner's plan, not the address's.
        let (status, _, body) = form_post(
            &f.app,
            "/oauth/token",
            Some((&f.app_id, f.secret.as_deref().unwrap())),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(status, 200, "[{backend:?}] {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_approval_only_the_owner_organization_can_authorize_its_app() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let admin = app.register("admin@example.com").await;
        app.lift_starter_limits(&admin.token).await;
        let dev = app.register("dev@example.com").await;
        let other = app.register("other@example.com").await;
        let r = app
            .gql_ok(
                Some(&dev.token),
                "mutation($i: CreateAppInput!) { createApp(input: $i) { clientSecret app { id } } }",
                json!({ "i": { "name": "In Review", "description": "Not yet listed", "category": "SECURITY",
                    "requestedScopes": ["keys:read"], "redirectUris": [REDIRECT] } }),
            )
            .await;
        let id = r["createApp"]["app"]["id"].as_str().unwrap().to_string();
        let secret = r["createApp"]["clientSecret"].as_str().unwrap().to_string();
        app.gql_ok(Some(&dev.token), "mutation($id: ID!) { submitApp(id: $id) { status } }", json!({ "id": id })).await;
        let m = "mutation($i: AuthorizeAppInput!) { authorizeApp(input: $i) { redirectTo installation { organizationId } } }";
        // Another organization cannot install an app that is not in the marketplace.
        let r = app.gql(Some(&other.token), m, json!({ "i": { "clientId": id } })).await;
        assert_eq!(code(&r), "FORBIDDEN", "[{backend:?}] {r}");
        // Its own organization can, to build against it while it waits for review.
        let r = app.gql_ok(Some(&dev.token), m, json!({ "i": { "clientId": id } })).await;
        assert_eq!(r["authorizeApp"]["installation"]["organizationId"], dev.org_id.as_str());
        let code_value = query_of(r["authorizeApp"]["redirectTo"].as_str().unwrap())["code"].clone();
        let (status, _, body) = form_post(
            &app,
            "/oauth/token",
            Some((&id, &secret)),
            &[("grant_type", "authorization_code"), ("code", &code_value), ("redirect_uri", REDIRECT)],
        )
        .await;
        assert_eq!(status, 200, "[{backend:?}] {body}");
        let r = app.gql_ok(Some(body["access_token"].as_str().unwrap()), "{ viewer { kind } }", json!({})).await;
        assert_eq!(r["viewer"]["kind"], "OAUTH_APP");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_expired_tokens_but_keeps_what_reuse_detection_needs() {
    for backend in backends() {
        let f = fixture(backend, "CONFIDENTIAL").await;
        let secret = f.secret.clone().unwrap();
        let m = "mutation($i: AuthorizeAppInput!) { authorizeApp(input: $i) { redirectTo } }";
        let r = f.app.gql_ok(Some(&f.user.token), m, json!({ "i": { "clientId": f.app_id } })).await;
        let grant_code = query_of(r["authorizeApp"]["redirectTo"].as_str().unwrap())["code"].clone();
        let auth = Some((f.app_id.as_str(), secret.as_str()));
        let (_, _, first) = form_post(
            &f.app,
            "/oauth/token",
            auth,
            &[("grant_type", "authorization_code"), ("code", &grant_code), ("redirect_uri", REDIRECT)],
        )
        .await;
        let used = first["refresh_token"].as_str().unwrap().to_string();
        let (_, _, second) =
            form_post(&f.app, "/oauth/token", auth, &[("grant_type", "refresh_token"), ("refresh_token", &used)]).await;
        let live = second["refresh_token"].as_str().unwrap().to_string();

        // Two days on: both access tokens are gone; the refresh tokens (30 days) and the code stay.
        f.app.clock.advance_ms(2 * 86_400_000);
        use gantry::platform::clock::Clock;
        let (codes, tokens) = gantry::oauth::retention::prune(&f.app.app, f.app.clock.now_ms()).await.unwrap();
        assert_eq!((codes, tokens), (0, 2), "[{backend:?}]");
        // So the used refresh token is still recognised as reuse, and revokes the live one.
        let (status, _, body) =
            form_post(&f.app, "/oauth/token", auth, &[("grant_type", "refresh_token"), ("refresh_token", &used)]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
        assert!(body["error_description"].as_str().unwrap().contains("already used"), "{body}");
        let (status, _, _) =
            form_post(&f.app, "/oauth/token", auth, &[("grant_type", "refresh_token"), ("refresh_token", &live)]).await;
        assert_eq!(status, 400);

        // Past the longest refresh lifetime, everything of the grant is gone.
        f.app.clock.advance_ms(400 * 86_400_000);
        let (codes, tokens) = gantry::oauth::retention::prune(&f.app.app, f.app.clock.now_ms()).await.unwrap();
        assert_eq!((codes, tokens), (1, 2), "[{backend:?}]");
    }
}
