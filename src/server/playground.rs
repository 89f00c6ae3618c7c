//! The playground: GraphiQL built from `playground/` by `build.rs` and embedded in the binary, so
//! it works with the network off.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::ServerState;

#[derive(rust_embed::RustEmbed)]
#[folder = "$OUT_DIR/playground"]
struct Assets;

pub fn routes() -> Router<ServerState> {
    Router::new()
        .route("/playground", get(|| async { Redirect::permanent("/playground/") }))
        .route("/playground/", get(|| async { asset("index.html") }))
        .route("/playground/{*path}", get(|Path(path): Path<String>| async move { asset(&path) }))
}

/// The REST API reference (`/api/v1/docs`): Swagger UI, built with the playground.
pub async fn docs() -> Response {
    let mut r = asset("docs.html");
    if r.status().is_success() {
        super::pages::secure_headers(r.headers_mut(), DOCS_CSP);
    }
    r
}

fn asset(path: &str) -> Response {
    embedded::<Assets>(path, PLAYGROUND_CSP)
}

/// A file of an embedded build: assets (content-hashed names) cached for good, pages revalidated
/// and sent with `csp`.
pub(super) fn embedded<A: rust_embed::RustEmbed>(path: &str, csp: &'static str) -> Response {
    let Some(file) = A::get(path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mime = file.metadata.mimetype().to_string();
    let cache = if path.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    let mut r = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(&mime).unwrap_or(HeaderValue::from_static("application/octet-stream")),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        file.data.into_owned(),
    )
        .into_response();
    if mime.starts_with("text/html") {
        super::pages::secure_headers(r.headers_mut(), csp);
        // The assets are cached; the page itself is small and says which to load.
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    } else {
        r.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    }
    r
}

/// The playground's scripts and styles are its own files; it talks to this server only (HTTP and
/// WebSocket).
const PLAYGROUND_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Swagger UI styles itself inline and calls this server only ("try it out").
const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
