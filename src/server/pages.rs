//! Server-rendered pages for people: the security headers every HTML answer carries, and the
//! account pages that links in mail open — accept an invitation, confirm an address, choose a new
//! password. Each page is an askama template compiled into the binary, without JavaScript; each
//! form is charged to the caller's per-IP limits before anything is checked, like the OAuth
//! login form, and holds the mailed token (so another site cannot forge it: it would need the
//! token).

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ServerState;
use crate::app::App;
use crate::error::Error;

/// The Content-Security-Policy of pages without scripts: nothing from elsewhere, forms post here.
pub const PAGE_CSP: &str = "default-src 'none'; img-src 'self' https: data:; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Adds the headers every HTML page sends: a Content-Security-Policy (`csp`), no sniffing, no
/// referrer, no framing, no caching.
pub fn secure_headers(h: &mut HeaderMap, csp: &'static str) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// An HTML answer with the page headers.
pub fn html(status: StatusCode, rendered: Result<String, askama::Error>) -> Response {
    let body = rendered.unwrap_or_else(|e| {
        tracing::error!(error = %e, "a page failed to render");
        "<!doctype html><title>Error</title><p>The page could not be shown.</p>".into()
    });
    let mut r = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    secure_headers(r.headers_mut(), PAGE_CSP);
    r
}

#[derive(Template)]
#[template(path = "landing.html")]
struct LandingPage<'a> {
    public_url: &'a str,
    ws_url: &'a str,
    version: &'a str,
}

/// `GET /`: where things are.
pub async fn landing(State(s): State<ServerState>) -> Response {
    let public = s.app.public_url();
    let ws = public.replacen("http", "ws", 1);
    html(StatusCode::OK, LandingPage { public_url: &public, ws_url: &ws, version: env!("CARGO_PKG_VERSION") }.render())
}

#[derive(Template)]
#[template(path = "account/invitation.html")]
struct InvitationPage<'a> {
    organization: &'a str,
    role: &'a str,
    email: &'a str,
    expires: String,
    token: &'a str,
    account_exists: bool,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "account/verify.html")]
struct VerifyPage<'a> {
    token: &'a str,
}

#[derive(Template)]
#[template(path = "account/reset.html")]
struct ResetPage<'a> {
    token: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "account/done.html")]
struct DonePage<'a> {
    title: &'a str,
    message: &'a str,
    failed: bool,
}

fn done(status: StatusCode, title: &str, message: &str) -> Response {
    html(status, DonePage { title, message, failed: !status.is_success() }.render())
}

fn form(body: &[u8]) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn token_of(uri: &axum::http::Uri) -> String {
    super::query_params(uri.query()).remove("token").unwrap_or_default()
}

/// Charges the caller's per-IP limits; a refusal is a page saying when to come back.
async fn limited(app: &App, headers: &HeaderMap, peer: SocketAddr) -> Option<Response> {
    let ip = super::client_ip(app, headers, peer).0;
    let (subject, policy) = match crate::limits::service::resolve(app, None, ip).await {
        Ok(r) => r,
        Err(e) => {
            e.log();
            return Some(done(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Try again in a moment."));
        }
    };
    let (decision, _permit) = app.limiter.acquire(&subject, policy, 1, 0, app.clock.now_ms()).await;
    decision.refusal.as_ref()?;
    let secs = ((decision.retry_after_ms + 999) / 1000).max(1);
    let mut r = done(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        &format!("Too many requests from your address; try again in {secs} s."),
    );
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Some(r)
}

fn expired_invitation() -> Response {
    done(
        StatusCode::NOT_FOUND,
        "This invitation cannot be used",
        "The link is unknown, was already used, was revoked or has expired. Ask for a new invitation.",
    )
}

async fn invitation_form(app: &App, token: &str, error: Option<&str>, status: StatusCode) -> Response {
    match crate::accounts::invitations::preview(app, token).await {
        Ok(p) => html(
            status,
            InvitationPage {
                organization: &p.organization_name,
                role: &p.invitation.role,
                email: &p.invitation.email,
                expires: chrono::DateTime::from_timestamp_millis(p.invitation.expires_at)
                    .unwrap_or_default()
                    .format("%Y-%m-%d %H:%M")
                    .to_string(),
                token,
                account_exists: p.account_exists,
                error,
            }
            .render(),
        ),
        Err(Error::NotFound(_)) => expired_invitation(),
        Err(e) => {
            e.log();
            done(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Try again in a moment.")
        }
    }
}

/// `GET /invitations/accept?token=…`: the invitation and a form to sign in or sign up.
pub async fn show_invitation(
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if let Some(r) = limited(&s.app, &headers, peer).await {
        return r;
    }
    invitation_form(&s.app, &token_of(&uri), None, StatusCode::OK).await
}

/// `POST /invitations/accept`: signs in (or signs up) as the invited address and accepts. The
/// session opened for it is ended at once: the page does not sign the browser in.
pub async fn accept_invitation(
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let app = &s.app;
    if let Some(r) = limited(app, &headers, peer).await {
        return r;
    }
    let ip = super::client_ip(app, &headers, peer).0;
    let f = form(&body);
    let token = f.get("token").cloned().unwrap_or_default();
    let password = f.get("password").cloned().unwrap_or_default();
    let preview = match crate::accounts::invitations::preview(app, &token).await {
        Ok(p) => p,
        Err(Error::NotFound(_)) => return expired_invitation(),
        Err(e) => {
            e.log();
            return done(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Try again in a moment.");
        }
    };
    let email = preview.invitation.email.clone();
    let outcome: Result<(), Error> = async {
        let session = match f.get("action").map(String::as_str) {
            Some("signin") => crate::accounts::service::login(app, &email, &password, ip).await?.1,
            Some("signup") => {
                let name = f.get("name").map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
                let input = crate::accounts::service::RegisterInput {
                    email: email.clone(),
                    password: password.clone(),
                    name,
                    invitation_token: Some(token.clone()),
                };
                crate::accounts::service::register(app, input, ip).await?.1
            }
            _ => return Err(Error::bad_input("action", "the form did not say what to do")),
        };
        let bearer = crate::auth::Bearer { token: &session.token, ip, organization: None };
        let principal = crate::auth::authenticate(app, &bearer).await?;
        let accepted = if f.get("action").map(String::as_str) == Some("signin") {
            crate::accounts::invitations::accept(app, &principal, &token).await.map(|_| ())
        } else {
            Ok(())
        };
        // The page signs nobody in: the session existed only to accept.
        crate::accounts::service::logout(app, &principal).await?;
        accepted
    }
    .await;
    match outcome {
        Ok(()) => done(
            StatusCode::OK,
            &format!("You joined {}", preview.organization_name),
            &format!(
                "{email} is now a member of {} as {}. Sign in with this address to work in it.",
                preview.organization_name, preview.invitation.role
            ),
        ),
        Err(e) if e.code() == crate::error::Code::Internal => {
            e.log();
            done(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Try again in a moment.")
        }
        Err(Error::NotFound(_)) => expired_invitation(),
        Err(e) => {
            let status = StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            invitation_form(app, &token, Some(&e.public_message()), status).await
        }
    }
}

/// `GET /auth/verify-email?token=…`: a button that confirms the address (a mail scanner that
/// follows the link confirms nothing).
pub async fn show_verify(
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if let Some(r) = limited(&s.app, &headers, peer).await {
        return r;
    }
    html(StatusCode::OK, VerifyPage { token: &token_of(&uri) }.render())
}

/// `POST /auth/verify-email`: confirms the address.
pub async fn verify(
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = limited(&s.app, &headers, peer).await {
        return r;
    }
    let token = form(&body).remove("token").unwrap_or_default();
    match crate::accounts::email::verify(&s.app, &token).await {
        Ok(user) => done(StatusCode::OK, "Address confirmed", &format!("{} is confirmed. Thank you.", user.email)),
        Err(e) if e.code() == crate::error::Code::Internal => {
            e.log();
            done(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Try again in a moment.")
        }
        Err(_) => done(
            StatusCode::BAD_REQUEST,
            "This link cannot be used",
            "The link is unknown, was already used or has expired. Ask for a new one from your account.",
        ),
    }
}

/// `GET /auth/reset-password?token=…`: the form for a new password.
pub async fn show_reset(
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if let Some(r) = limited(&s.app, &headers, peer).await {
        return r;
    }
    html(StatusCode::OK, ResetPage { token: &token_of(&uri), error: None }.render())
}

/// `POST /auth/reset-password`: sets the new password; every session of the account ends.
pub async fn reset(
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = limited(&s.app, &headers, peer).await {
        return r;
    }
    let f = form(&body);
    let token = f.get("token").cloned().unwrap_or_default();
    let password = f.get("password").cloned().unwrap_or_default();
    match crate::accounts::email::reset(&s.app, &token, &password).await {
        Ok(_) => done(
            StatusCode::OK,
            "Password changed",
            "Your new password is set, and every session of your account was signed out.",
        ),
        Err(e) if e.code() == crate::error::Code::Internal => {
            e.log();
            done(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Try again in a moment.")
        }
        Err(e) if e.field() == Some("password") => html(
            StatusCode::UNPROCESSABLE_ENTITY,
            ResetPage { token: &token, error: Some(&e.public_message()) }.render(),
        ),
        Err(_) => done(
            StatusCode::BAD_REQUEST,
            "This link cannot be used",
            "The link is unknown, was already used or has expired. Ask for a new one.",
        ),
    }
}

pub fn routes() -> axum::Router<ServerState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/", get(landing))
        .route("/invitations/accept", get(show_invitation).post(accept_invitation))
        .route("/auth/verify-email", get(show_verify).post(verify))
        .route("/auth/reset-password", get(show_reset).post(reset))
        .route("/exports/{id}/download", get(download_export))
}

/// `GET /exports/{id}/download?token=…`: an organization export's document, streamed chunk by
/// chunk from the database (the signed link is the credential; it works until the export
/// expires).
pub async fn download_export(
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
    uri: axum::http::Uri,
) -> Response {
    let app = s.app.clone();
    if let Some(r) = limited(&app, &headers, peer).await {
        return r;
    }
    let row = match crate::exports::service::open_download(&app, &id, &token_of(&uri)).await {
        Ok(row) => row,
        Err(e) => {
            e.log();
            let status = StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::NOT_FOUND);
            return super::json_error(status, e.code(), "this download link is unknown or has expired".into());
        }
    };
    let chunks = row.chunks;
    let export = row.id.clone();
    let stream = futures_util::stream::unfold(0i64, move |seq| {
        let (app, export) = (app.clone(), export.clone());
        async move {
            if seq >= chunks {
                return None;
            }
            let next = match crate::exports::service::chunk(&app, &export, seq).await {
                Ok(Some(data)) => Ok(axum::body::Bytes::from(data)),
                Ok(None) => Err(std::io::Error::other("an export chunk is missing")),
                Err(e) => {
                    e.log();
                    Err(std::io::Error::other("an export chunk could not be read"))
                }
            };
            Some((next, seq + 1))
        }
    });
    let mut r = axum::body::Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}-{}.json\"", row.org_id, row.id)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&row.bytes.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}
