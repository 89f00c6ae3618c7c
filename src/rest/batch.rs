//! `POST /api/v2/integrations/batch`: up to 50 REST calls in one request. Each sub-request is a
//! call of its own — found in the route table, authenticated with the batch's credential, limited,
//! executed and metered like a separate request — and the answers come back in order, each with
//! its own status and body.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, OriginalUri, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::envelope::{Envelope, envelope_id};
use super::typed::Types;
use super::versions::Version;
use super::{Request, Table, handle, request_id};
use crate::error::Code;
use crate::server::ServerState;
use crate::usage::meter::UsageTag;

/// Sub-requests per batch.
pub const MAX_REQUESTS: usize = 50;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    requests: Vec<SubRequest>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SubRequest {
    method: String,
    /// `/keys?limit=5`, under `/api/v2` (or a full `/api/v1/...` or `/api/v2/...` path).
    path: String,
    #[serde(default)]
    body: Option<Value>,
}

fn invalid(trace: &str, field: &str, message: &str) -> Response {
    Envelope::new(Version::V2, trace).error(
        StatusCode::UNPROCESSABLE_ENTITY,
        Code::BadUserInput.rest_type(),
        &format!("{field}: {message}"),
        Some(json!({ "field": field, "location": "body" })),
    )
}

pub(super) async fn serve(
    tables: Arc<[Table; 2]>,
    types: Arc<Types>,
    state: State<ServerState>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let trace = request_id(&headers).0;
    let limit = state.app.config.max_body_bytes;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        let msg = format!("request body is larger than {limit} bytes");
        return Envelope::new(Version::V2, &trace).error(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::PayloadTooLarge.rest_type(),
            &msg,
            None,
        );
    };
    let batch: Batch = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) if e.is_data() => return invalid(&trace, "requests", &format!("{e}")),
        Err(e) => {
            let msg = format!("malformed JSON body: {e}");
            return Envelope::new(Version::V2, &trace).error(StatusCode::BAD_REQUEST, "validation_error", &msg, None);
        }
    };
    if batch.requests.is_empty() || batch.requests.len() > MAX_REQUESTS {
        let msg = format!("must hold 1 to {MAX_REQUESTS} requests (got {})", batch.requests.len());
        return invalid(&trace, "requests", &msg);
    }
    // Each sub-request carries the batch's credential and organization, nothing else.
    let mut carried = HeaderMap::new();
    for name in [header::AUTHORIZATION, HeaderName::from_static("x-organization-id"), header::USER_AGENT] {
        if let Some(v) = headers.get(&name) {
            carried.insert(name, v.clone());
        }
    }
    carried.insert(header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
    for name in ["x-forwarded-for", "x-real-ip"] {
        if let Some(v) = headers.get(name) {
            carried.insert(HeaderName::from_static(name), v.clone());
        }
    }
    let mut answers = Vec::with_capacity(batch.requests.len());
    let mut limit_headers = HeaderMap::new();
    for (i, sub) in batch.requests.into_iter().enumerate() {
        let field = format!("requests[{i}]");
        let Ok(method) = Method::from_bytes(sub.method.to_ascii_uppercase().as_bytes()) else {
            return invalid(&trace, &format!("{field}.method"), "must be GET, POST, PUT, PATCH or DELETE");
        };
        if !matches!(method, Method::GET | Method::POST | Method::PUT | Method::PATCH | Method::DELETE) {
            return invalid(&trace, &format!("{field}.method"), "must be GET, POST, PUT, PATCH or DELETE");
        }
        let (version, under) = match sub.path.as_str() {
            p if p.starts_with("/api/v1/") => (Version::V1, &p["/api/v1".len()..]),
            p if p.starts_with("/api/v2/") => (Version::V2, &p["/api/v2".len()..]),
            p if p.starts_with('/') && !p.starts_with("/api/") => (Version::V2, p),
            _ => return invalid(&trace, &format!("{field}.path"), "must start with / (under /api/v2) or /api/v1/"),
        };
        let Ok(uri) = format!("{}{under}", version.prefix()).parse::<Uri>() else {
            return invalid(&trace, &format!("{field}.path"), "is not a valid path");
        };
        let table = tables.iter().find(|t| t.version == version).expect("a table per version");
        let started = std::time::Instant::now();
        let resp = match table.find(&method, uri.path().strip_prefix(version.prefix()).unwrap_or("")) {
            Some((route, path)) => {
                let body = match &sub.body {
                    Some(b) => Body::from(serde_json::to_vec(b).unwrap_or_default()),
                    None => Body::empty(),
                };
                let mut sub_headers = carried.clone();
                sub_headers.insert(
                    "x-request-id",
                    axum::http::HeaderValue::from_str(&format!("{trace}.{i}"))
                        .unwrap_or(axum::http::HeaderValue::from_static("-")),
                );
                let req = Request {
                    state: state.clone(),
                    peer,
                    uri: OriginalUri(uri.clone()),
                    path,
                    query: RawQuery(uri.query().map(str::to_string)),
                    headers: sub_headers,
                    body,
                };
                handle(route, types.clone(), version, req).await
            }
            None => Envelope::new(version, &trace).error(StatusCode::NOT_FOUND, "not_found", "no such route", None),
        };
        answers.push(answer(&state, resp, started, &mut limit_headers).await);
    }
    let body = json!({ "id": envelope_id(&trace), "data": answers });
    let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
    resp.headers_mut().extend(limit_headers);
    super::versions::stamp(resp.headers_mut(), Version::V2, "/integrations/batch");
    resp.extensions_mut().insert(crate::server::MetricOp(Arc::from("POST /api/v2/integrations/batch")));
    resp
}

/// One sub-request's answer: metered as a call of its own, then `{status, body}`.
async fn answer(state: &ServerState, mut resp: Response, started: std::time::Instant, limits: &mut HeaderMap) -> Value {
    let tag = resp.extensions_mut().remove::<UsageTag>();
    let status = resp.status().as_u16();
    if resp.headers().contains_key("x-ratelimit-remaining") {
        limits.clear();
        for (name, v) in resp.headers() {
            let n = name.as_str();
            if n.starts_with("ratelimit") || n.starts_with("x-ratelimit") || n == "retry-after" {
                limits.insert(name.clone(), v.clone());
            }
        }
    }
    let version = resp.headers().get("x-api-version").and_then(|v| v.to_str().ok()).map(str::to_string);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap_or_default();
    if let Some(tag) = tag {
        let at = state.app.clock.now_ms();
        let micros = started.elapsed().as_micros() as u64;
        state.app.meter.record(tag.into_record(status, micros, 0, bytes.len() as u64, at));
    }
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
    let mut out = json!({ "status": status, "body": body });
    if let Some(v) = version {
        out["api_version"] = json!(v);
    }
    out
}
