//! The developer console: a single-page app built from `console/` by `build.rs` and embedded in
//! the binary (it works with the network off). It uses the public API only — GraphQL over HTTP and
//! WebSocket, and the printable invoice page of REST. Paths under `/console/` that are not files
//! are the app's own pages (history routing): they answer its `index.html`.

use axum::Router;
use axum::extract::Path;
use axum::response::{Redirect, Response};
use axum::routing::get;

use super::ServerState;
use super::playground::embedded;

#[derive(rust_embed::RustEmbed)]
#[folder = "$OUT_DIR/console"]
struct Assets;

pub fn routes() -> Router<ServerState> {
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(|| async { asset("index.html") }))
        .route("/console/{*path}", get(|Path(path): Path<String>| async move { asset(&path) }))
}

/// A file of the build or, for a page of the app (a path without an extension), the app.
fn asset(path: &str) -> Response {
    let page = !path.rsplit('/').next().unwrap_or("").contains('.');
    if page && Assets::get(path).is_none() {
        embedded::<Assets>("index.html", CSP)
    } else {
        embedded::<Assets>(path, CSP)
    }
}

/// The console's scripts and styles are its own files; it talks to this server only.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; frame-src 'self' blob:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
