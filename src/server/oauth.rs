//! The OAuth 2.0 authorization server's HTTP face: RFC 8414 metadata, and the token (RFC 6749
//! §3.2), revocation (RFC 7009) and introspection (RFC 7662) endpoints. Form-encoded requests,
//! JSON answers with `Cache-Control: no-store`, errors in the RFC's shape (401 with
//! `WWW-Authenticate: Basic` for `invalid_client`). A request whose client authenticates is
//! admitted under the app owner's plan (one subject per app); one whose client does not is
//! charged to the per-IP limits of anonymous callers, so guessing client secrets is rate limited.
//!
//! The rules live in `crate::oauth`; this module only reads requests and writes answers.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::ServerState;
use crate::app::App;
use crate::oauth::OAuthError;
use crate::oauth::tokens::{self, ClientCredentials};

/// The issuer: `GANTRY_PUBLIC_URL`, or `http://` and the bind address.
pub fn issuer(app: &App) -> String {
    app.public_url()
}

/// `GET /.well-known/oauth-authorization-server`.
pub async fn metadata(State(s): State<ServerState>) -> Response {
    let iss = issuer(&s.app);
    let body = serde_json::json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oauth/authorize"),
        "token_endpoint": format!("{iss}/oauth/token"),
        "revocation_endpoint": format!("{iss}/oauth/revoke"),
        "introspection_endpoint": format!("{iss}/oauth/introspect"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": crate::auth::SCOPES,
        "service_documentation": format!("{iss}/playground/"),
    });
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(body)).into_response()
}

fn no_store(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")], Json(body)).into_response()
}

fn error(e: OAuthError) -> Response {
    let status = match e.code {
        "invalid_client" => StatusCode::UNAUTHORIZED,
        "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
        "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut r = no_store(status, serde_json::json!({ "error": e.code, "error_description": e.description }));
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"gantry\""));
    }
    r
}

/// The form fields of a request body (`application/x-www-form-urlencoded`). A parameter given
/// twice is an error (RFC 6749 §3.2).
fn form(headers: &HeaderMap, body: &[u8]) -> Result<std::collections::HashMap<String, String>, OAuthError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
    }
    let mut out = std::collections::HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(OAuthError::invalid_request(format!("`{k}` is given more than once")));
        }
    }
    Ok(out)
}

/// Client credentials from `Authorization: Basic` (RFC 6749 §2.3.1: form-encoded id and secret)
/// or the form. Both at once is an error.
fn client_credentials(
    headers: &HeaderMap,
    form: &std::collections::HashMap<String, String>,
) -> Result<ClientCredentials, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let v = v.to_str().map_err(|_| OAuthError::invalid_client("malformed Authorization header"))?;
            let Some((scheme, b64)) = v.trim().split_once(' ') else {
                return Err(OAuthError::invalid_client("malformed Authorization header"));
            };
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(OAuthError::invalid_client("client authentication uses HTTP Basic"));
            }
            let decoded = STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            let (id, secret) =
                decoded.split_once(':').ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            let unescape =
                |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.to_string());
            Some((unescape(id).unwrap_or_default(), unescape(secret).unwrap_or_default()))
        }
    };
    match basic {
        Some((id, secret)) => {
            if form.contains_key("client_secret") {
                return Err(OAuthError::invalid_request("use one client authentication method, not two"));
            }
            if form.get("client_id").is_some_and(|f| *f != id) {
                return Err(OAuthError::invalid_client("client_id differs from the Basic credentials"));
            }
            Ok(ClientCredentials {
                client_id: Some(id),
                client_secret: Some(secret).filter(|s| !s.is_empty()),
                basic: true,
            })
        }
        None => Ok(ClientCredentials {
            client_id: form.get("client_id").cloned(),
            client_secret: form.get("client_secret").cloned(),
            basic: false,
        }),
    }
}

/// The per-IP limits of an anonymous caller, for the token, revocation and introspection
/// endpoints.
pub(super) async fn admit_ip(app: &App, headers: &HeaderMap, peer: SocketAddr) -> Option<Response> {
    let ip = super::client_ip(app, headers, peer).0;
    let (subject, policy) = match crate::limits::service::resolve(app, None, ip).await {
        Ok(r) => r,
        Err(e) => return Some(error(e.into())),
    };
    let (decision, _permit) = app.limiter.acquire(&subject, policy, 1, 0, app.clock.now_ms()).await;
    decision.refusal.as_ref()?;
    Some(slow_down(decision.retry_after_ms))
}

/// Authenticates the client and admits the request: under the app owner's plan when it
/// authenticates, under the caller's per-IP limits when it does not.
async fn admit_client(
    app: &App,
    headers: &HeaderMap,
    peer: SocketAddr,
    creds: &ClientCredentials,
) -> Result<tokens::Client, Response> {
    match tokens::authenticate_client(app, creds).await {
        Ok(client) => {
            let principal = crate::auth::Principal {
                actor: crate::auth::Actor::OAuthApp {
                    app_id: client.app.id.clone(),
                    installation_id: None,
                    user_id: None,
                },
                org_id: client.app.org_id.clone(),
                role: None,
                scopes: std::sync::Arc::new(Vec::new()),
                is_platform: false,
                ip: super::client_ip(app, headers, peer).0,
                rate_override: None,
            };
            let (subject, policy) = match crate::limits::service::resolve(app, Some(&principal), principal.ip).await {
                Ok(r) => r,
                Err(e) => return Err(error(e.into())),
            };
            // Its own subject, apart from the app's API calls, and outside the monthly quota.
            let subject = crate::limits::limiter::Subject {
                rate: format!("{}:oauth", subject.rate),
                org: format!("{}:oauth", subject.org),
            };
            let (decision, _permit) = app.limiter.acquire(&subject, policy, 1, 0, app.clock.now_ms()).await;
            match decision.refusal {
                None => Ok(client),
                Some(_) => Err(slow_down(decision.retry_after_ms)),
            }
        }
        Err(e) => Err(admit_ip(app, headers, peer).await.unwrap_or_else(|| error(e))),
    }
}

fn slow_down(retry_after_ms: i64) -> Response {
    let secs = (retry_after_ms.max(0) + 999) / 1000;
    let mut r = no_store(
        StatusCode::TOO_MANY_REQUESTS,
        serde_json::json!({ "error": "slow_down", "error_description": format!("too many requests; retry in {} s", secs.max(1)) }),
    );
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// `POST /oauth/token`.
pub async fn token(
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let app = &s.app;
    let result = async {
        let form = form(&headers, &body)?;
        let creds = client_credentials(&headers, &form)?;
        let grant_type = form.get("grant_type").map(String::as_str);
        let client = match admit_client(app, &headers, peer, &creds).await {
            Ok(c) => c,
            Err(r) => return Ok(Err(r)),
        };
        let get = |k: &str| form.get(k).map(String::as_str);
        match grant_type {
            Some("authorization_code") => {
                tokens::exchange_code(app, &client, get("code"), get("redirect_uri"), get("code_verifier")).await
            }
            Some("refresh_token") => tokens::refresh(app, &client, get("refresh_token"), get("scope")).await,
            Some("client_credentials") => tokens::client_credentials(app, &client, get("scope")).await,
            None => Err(OAuthError::invalid_request("grant_type is required")),
            Some(other) => Err(OAuthError::new(
                "unsupported_grant_type",
                format!("`{other}` is not supported: authorization_code, refresh_token or client_credentials"),
            )),
        }
        .map(Ok)
    }
    .await;
    match result {
        Ok(Ok(t)) => no_store(StatusCode::OK, serde_json::to_value(t).unwrap_or_default()),
        Ok(Err(refused)) => refused,
        Err(e) => error(e),
    }
}

/// `POST /oauth/revoke`: 200 whether or not the token was known.
pub async fn revoke(
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let app = &s.app;
    let result = async {
        let form = form(&headers, &body)?;
        let client = match admit_client(app, &headers, peer, &client_credentials(&headers, &form)?).await {
            Ok(c) => c,
            Err(r) => return Ok(Err(r)),
        };
        tokens::revoke(app, &client, form.get("token").map(String::as_str)).await.map(Ok)
    }
    .await;
    match result {
        Ok(Ok(())) => no_store(StatusCode::OK, serde_json::json!({})),
        Ok(Err(refused)) => refused,
        Err(e) => error(e),
    }
}

/// `POST /oauth/introspect`.
pub async fn introspect(
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let app = &s.app;
    let result = async {
        let form = form(&headers, &body)?;
        let client = match admit_client(app, &headers, peer, &client_credentials(&headers, &form)?).await {
            Ok(c) => c,
            Err(r) => return Ok(Err(r)),
        };
        tokens::introspect(app, &client, form.get("token").map(String::as_str)).await.map(Ok)
    }
    .await;
    match result {
        Ok(Ok(v)) => no_store(StatusCode::OK, v),
        Ok(Err(refused)) => refused,
        Err(e) => error(e),
    }
}

/// The routes of the authorization server, its pages included.
pub fn routes() -> axum::Router<ServerState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/oauth/authorize", get(super::authorize::show).post(super::authorize::submit))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .route("/oauth/introspect", post(introspect))
}
