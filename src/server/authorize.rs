//! `GET/POST /oauth/authorize`: the server-rendered login and consent pages of the authorization
//! code flow (askama templates compiled into the binary, no JavaScript). The request is checked
//! by `oauth::installations::check_request` on every step: an unknown client or an unregistered
//! redirect URI is an error page and is never redirected to; other errors go back to the client
//! with the RFC 6749 §4.1.2.1 codes.
//!
//! The browser's session is a `gantry_oauth_session` cookie (HTTP-only, `SameSite=Lax`, `Secure`
//! when the public URL is https) holding a session token from the login form. Forms carry a CSRF
//! token that must equal the `gantry_csrf` cookie (double submit; `SameSite` keeps other sites'
//! forms from sending it). Pages cannot be framed (`frame-ancestors 'none'`), so the consent
//! button cannot be clicked through another site.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ServerState;
use crate::app::App;
use crate::oauth::installations::{self, AuthorizeError, AuthorizeParams, AuthorizeRequest};
use crate::platform::crypto;
use crate::platform::ids::{OrgId, UserId};

const SESSION_COOKIE: &str = "gantry_oauth_session";
const CSRF_COOKIE: &str = "gantry_csrf";
/// The request parameters a form carries back.
const PARAMS: [&str; 7] =
    ["response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method"];

#[derive(Template)]
#[template(path = "oauth/login.html")]
struct LoginPage<'a> {
    app_name: &'a str,
    csrf: &'a str,
    params: Vec<(&'static str, String)>,
    email: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "oauth/consent.html")]
struct ConsentPage<'a> {
    app_name: &'a str,
    icon_url: Option<&'a str>,
    developer: &'a str,
    listed: bool,
    user_email: &'a str,
    scopes: Vec<(String, &'static str)>,
    orgs: Vec<(OrgId, String)>,
    csrf: &'a str,
    params: Vec<(&'static str, String)>,
    redirect_host: String,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "oauth/error.html")]
struct ErrorPage<'a> {
    message: &'a str,
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn secure(app: &App) -> &'static str {
    if super::oauth::issuer(app).starts_with("https://") { "; Secure" } else { "" }
}

/// A page: no caching, no framing, and the CSRF cookie when the browser has none yet.
fn page(status: StatusCode, html: Result<String, askama::Error>, set_csrf: Option<(&App, &str)>) -> Response {
    let body = html.unwrap_or_else(|e| {
        tracing::error!(error = %e, "an OAuth page failed to render");
        "<!doctype html><title>Error</title><p>The page could not be shown.</p>".into()
    });
    let mut r = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    let h = r.headers_mut();
    // The consent form's answer redirects to the client: form-action allows it.
    super::pages::secure_headers(
        h,
        "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; form-action 'self' http: https:; base-uri 'none'; frame-ancestors 'none'",
    );
    if let Some((app, token)) = set_csrf
        && let Ok(v) =
            HeaderValue::from_str(&format!("{CSRF_COOKIE}={token}; Path=/oauth; HttpOnly; SameSite=Lax{}", secure(app)))
    {
        h.append(header::SET_COOKIE, v);
    }
    r
}

fn error_page(status: StatusCode, message: &str) -> Response {
    page(status, ErrorPage { message }.render(), None)
}

fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut().insert(header::LOCATION, v);
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(_) => error_page(StatusCode::BAD_REQUEST, "The redirect address is not valid."),
    }
}

fn params_of(map: &std::collections::HashMap<String, String>) -> AuthorizeParams {
    let get = |k: &str| map.get(k).cloned();
    AuthorizeParams {
        response_type: get("response_type"),
        client_id: get("client_id"),
        redirect_uri: get("redirect_uri"),
        scope: get("scope"),
        state: get("state"),
        code_challenge: get("code_challenge"),
        code_challenge_method: get("code_challenge_method"),
    }
}

fn hidden(map: &std::collections::HashMap<String, String>) -> Vec<(&'static str, String)> {
    PARAMS.iter().filter_map(|k| map.get(*k).map(|v| (*k, v.clone()))).collect()
}

/// The signed-in user of the browser's session cookie, if it is still valid.
async fn session_user(app: &App, headers: &HeaderMap) -> Option<(UserId, String)> {
    let token = cookie(headers, SESSION_COOKIE)?;
    if !token.starts_with(crate::auth::SESSION_PREFIX) {
        return None;
    }
    let bearer = crate::auth::Bearer { token, ip: None, organization: None };
    let principal = crate::auth::recheck(app, &bearer).await.ok()?;
    let user = crate::accounts::service::viewer_user(app, &principal).await.ok()??;
    Some((user.id, user.email))
}

/// Checks the request; an error becomes its page or its redirect.
async fn checked(app: &App, map: &std::collections::HashMap<String, String>) -> Result<AuthorizeRequest, Response> {
    installations::check_request(app, &params_of(map)).await.map_err(|e| match e {
        AuthorizeError::Page(message) => error_page(StatusCode::BAD_REQUEST, &message),
        other => redirect(&other.location().unwrap_or_default()),
    })
}

struct Screen<'a> {
    csrf: &'a str,
    new_csrf: bool,
    error: Option<&'a str>,
    status: StatusCode,
}

async fn consent_or_login(
    app: &App,
    headers: &HeaderMap,
    map: &std::collections::HashMap<String, String>,
    req: &AuthorizeRequest,
    screen: Screen<'_>,
    email: &str,
) -> Response {
    let set = screen.new_csrf.then_some((app, screen.csrf));
    let Some((user, user_email)) = session_user(app, headers).await else {
        let html =
            LoginPage { app_name: &req.app.name, csrf: screen.csrf, params: hidden(map), email, error: screen.error }
                .render();
        return page(screen.status, html, set);
    };
    let orgs = match installations::installable_orgs(app, &user, &req.app).await {
        Ok(o) => o,
        Err(e) => {
            e.log();
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The authorization server could not read your organizations; try again.",
            );
        }
    };
    if orgs.is_empty() {
        return error_page(
            StatusCode::FORBIDDEN,
            "Your role does not manage app installations in any organization where this application can be installed.",
        );
    }
    let developer = match crate::accounts::service::org_name(app, &req.app.org_id).await {
        Ok(n) => n,
        Err(e) => {
            e.log();
            String::new()
        }
    };
    let redirect_host =
        url::Url::parse(&req.redirect_uri).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    let html = ConsentPage {
        app_name: &req.app.name,
        icon_url: req.app.icon_url.as_deref(),
        developer: &developer,
        listed: req.app.status() == crate::apps::service::Status::Active,
        user_email: &user_email,
        scopes: req.scopes.iter().map(|s| (s.clone(), crate::auth::describe_scope(s))).collect(),
        orgs,
        csrf: screen.csrf,
        params: hidden(map),
        redirect_host,
        error: screen.error,
    }
    .render();
    page(screen.status, html, set)
}

/// `GET /oauth/authorize`: the login page without a session, the consent page with one.
pub async fn show(State(s): State<ServerState>, headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let map = super::query_params(uri.query());
    let req = match checked(&s.app, &map).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let (csrf, new_csrf) = match cookie(&headers, CSRF_COOKIE).filter(|c| c.len() == 32) {
        Some(c) => (c.to_string(), false),
        None => (crypto::random_base62(32), true),
    };
    let screen = Screen { csrf: &csrf, new_csrf, error: None, status: StatusCode::OK };
    consent_or_login(&s.app, &headers, &map, &req, screen, "").await
}

/// `POST /oauth/authorize`: the login form (`action=login`) or the consent (`approve`, `deny`).
pub async fn submit(
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let app = &s.app;
    if let Some(refused) = super::oauth::admit_ip(app, &headers, peer).await {
        return refused;
    }
    let ip = super::client_ip(app, &headers, peer).0;
    let map: std::collections::HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let csrf = cookie(&headers, CSRF_COOKIE).unwrap_or("");
    let sent = map.get("csrf").map(String::as_str).unwrap_or("");
    if csrf.len() != 32 || !crypto::constant_time_eq(csrf.as_bytes(), sent.as_bytes()) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This form has expired or did not come from this site; go back to the application and start again.",
        );
    }
    let req = match checked(app, &map).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let screen = |error, status| Screen { csrf, new_csrf: false, error, status };
    match map.get("action").map(String::as_str) {
        Some("login") => {
            let email = map.get("email").map(String::as_str).unwrap_or("");
            let password = map.get("password").map(String::as_str).unwrap_or("");
            match crate::accounts::service::login(app, email, password, ip).await {
                Ok((_, session)) => {
                    let query =
                        url::form_urlencoded::Serializer::new(String::new()).extend_pairs(hidden(&map)).finish();
                    let mut r = redirect(&format!("/oauth/authorize?{query}"));
                    let cookie = format!(
                        "{SESSION_COOKIE}={}; Path=/oauth; HttpOnly; SameSite=Lax; Max-Age={}{}",
                        session.token,
                        app.config.session_ttl_secs,
                        secure(app)
                    );
                    if let Ok(v) = HeaderValue::from_str(&cookie) {
                        r.headers_mut().append(header::SET_COOKIE, v);
                    }
                    r
                }
                Err(e) => {
                    let message = e.public_message();
                    consent_or_login(
                        app,
                        &HeaderMap::new(),
                        &map,
                        &req,
                        screen(Some(&message), StatusCode::UNAUTHORIZED),
                        email,
                    )
                    .await
                }
            }
        }
        Some("deny") => {
            if session_user(app, &headers).await.is_none() {
                return consent_or_login(app, &headers, &map, &req, screen(None, StatusCode::UNAUTHORIZED), "").await;
            }
            redirect(&installations::deny(&req))
        }
        Some("approve") => {
            let Some((user, _)) = session_user(app, &headers).await else {
                return consent_or_login(app, &headers, &map, &req, screen(None, StatusCode::UNAUTHORIZED), "").await;
            };
            let Some(org) = map.get("organization_id").and_then(|o| o.parse::<OrgId>().ok()) else {
                return consent_or_login(
                    app,
                    &headers,
                    &map,
                    &req,
                    screen(Some("Choose an organization."), StatusCode::BAD_REQUEST),
                    "",
                )
                .await;
            };
            match installations::approve(app, &user, ip, &org, &req).await {
                Ok((location, _)) => redirect(&location),
                Err(e) => {
                    let message = e.public_message();
                    consent_or_login(app, &headers, &map, &req, screen(Some(&message), StatusCode::FORBIDDEN), "").await
                }
            }
        }
        _ => error_page(StatusCode::BAD_REQUEST, "The form did not say what to do."),
    }
}
