//! GraphQL over HTTP (POST and GET). Bad requests get GraphQL-shaped errors with a code and the
//! right status: malformed JSON 400, wrong content type 415, oversized body 413, bad credentials
//! 401/403. With `Accept: application/graphql-response+json` a request that never executed is 400.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::pipeline::{self, Admitted, Entrance, Refused, Stage};
use super::{ServerState, client_ip, request_id};
use crate::auth::Bearer;
use crate::error::{Code, Error};
use crate::usage::meter::{Source, UsageTag};

const GQL_RESPONSE: &str = "application/graphql-response+json";

fn wants_graphql_response(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains(GQL_RESPONSE))
}

/// A response carrying one GraphQL error with a code.
pub fn error_response(status: StatusCode, code: Code, message: &str, field: Option<&str>, gql: bool) -> Response {
    let mut ext = serde_json::json!({ "code": code.as_str() });
    if let Some(f) = field {
        ext["field"] = f.into();
    }
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": ext }] });
    json_response(status, &body, gql)
}

fn json_response(status: StatusCode, body: &impl serde::Serialize, gql: bool) -> Response {
    let mut bytes = Vec::with_capacity(512);
    if serde_json::to_writer(&mut bytes, body).is_err() {
        bytes = b"{}".to_vec();
    }
    let ct = if gql { GQL_RESPONSE } else { "application/json" };
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(ct))], bytes).into_response()
}

fn from_error(e: &Error, gql: bool) -> Response {
    e.log();
    let code = e.code();
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut ext = serde_json::json!({ "code": code.as_str() });
    if let Some(f) = e.field() {
        ext["field"] = f.into();
    }
    if let serde_json::Value::Object(extra) = e.extra_extensions() {
        ext.as_object_mut().into_iter().for_each(|o| o.extend(extra.clone()));
    }
    let body = serde_json::json!({ "errors": [{ "message": e.public_message(), "extensions": ext }] });
    let mut resp = json_response(status, &body, gql);
    if code == Code::Unauthenticated {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, super::www_authenticate(e));
    }
    if let Error::Limited { retry_after_secs, .. } = e
        && let Ok(v) = axum::http::HeaderValue::from_str(&retry_after_secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

pub async fn post_graphql(
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    // Taking the request whole avoids cloning its headers.
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let gql = wants_graphql_response(headers);
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime != "application/json" && mime != GQL_RESPONSE {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::BadUserInput,
            "POST /graphql needs `Content-Type: application/json`",
            Some("content-type"),
            gql,
        );
    }
    let bytes = match read_body(body, s.app.config.max_body_bytes).await {
        Ok(b) => b,
        Err(resp) => return resp(gql),
    };
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return execute_batch(&s, headers, peer, &bytes, gql).await;
    }
    let request: async_graphql::Request = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                Code::BadUserInput,
                &format!("malformed JSON request: {e}"),
                None,
                gql,
            );
        }
    };
    execute(&s, headers, peer, request, gql).await
}

/// Operations in one batched request (a JSON array).
pub const MAX_BATCH: usize = 10;

/// A batched request: each operation goes through the whole pipeline on its own — admitted,
/// limited, executed and metered as if it came alone — and the answers come back in order. The
/// rate-limit headers are those after the last operation the limiter saw; the status is 200 unless every
/// operation was refused alike (all 401, say).
async fn execute_batch(s: &ServerState, headers: &HeaderMap, peer: SocketAddr, bytes: &[u8], gql: bool) -> Response {
    let items: Vec<serde_json::Value> = match serde_json::from_slice(bytes) {
        Ok(items) => items,
        Err(e) => {
            let msg = format!("malformed JSON batch: {e}");
            return error_response(StatusCode::BAD_REQUEST, Code::BadUserInput, &msg, None, gql);
        }
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        let msg = format!(
            "a batched request is a JSON array of 1 to {MAX_BATCH} operations (got {}); send more as separate requests",
            items.len()
        );
        return error_response(StatusCode::BAD_REQUEST, Code::BadUserInput, &msg, None, gql);
    }
    let mut answers = Vec::with_capacity(items.len());
    let mut statuses = Vec::with_capacity(items.len());
    let mut last_headers = HeaderMap::new();
    for (i, item) in items.into_iter().enumerate() {
        let started = std::time::Instant::now();
        let size = item.to_string().len() as u64;
        let mut resp = match serde_json::from_value::<async_graphql::Request>(item) {
            Ok(request) => execute(s, headers, peer, request, false).await,
            Err(e) => {
                let msg = format!("operation {i} of the batch is not a GraphQL request: {e}");
                error_response(StatusCode::BAD_REQUEST, Code::BadUserInput, &msg, None, false)
            }
        };
        let tag = resp.extensions_mut().remove::<UsageTag>();
        let status = resp.status();
        if resp.headers().contains_key("x-ratelimit-remaining") || resp.headers().contains_key(header::WWW_AUTHENTICATE)
        {
            last_headers = std::mem::take(resp.headers_mut());
        }
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap_or_default();
        if let Some(tag) = tag {
            let at = s.app.clock.now_ms();
            let record =
                tag.into_record(status.as_u16(), started.elapsed().as_micros() as u64, size, body.len() as u64, at);
            s.app.meter.record(record);
        }
        statuses.push(status);
        answers.push(serde_json::from_slice::<serde_json::Value>(&body).unwrap_or(serde_json::Value::Null));
    }
    let status = match statuses.first() {
        Some(first) if statuses.iter().all(|s| s == first) && *first != StatusCode::OK => *first,
        _ => StatusCode::OK,
    };
    let mut resp = json_response(status, &answers, gql);
    for name in [
        "ratelimit-policy",
        "ratelimit",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "retry-after",
        "www-authenticate",
    ] {
        if let Some(v) = last_headers.get(name) {
            resp.headers_mut().insert(axum::http::HeaderName::from_static(name), v.clone());
        }
    }
    resp.extensions_mut().insert(super::observe::MetricOp(std::sync::Arc::from("batch")));
    resp
}

type ErrorFn = Box<dyn FnOnce(bool) -> Response + Send>;

/// Reads a body up to `limit` bytes; past it, a 413 with `PAYLOAD_TOO_LARGE`.
pub async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ErrorFn> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        Box::new(move |gql: bool| {
            error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::PayloadTooLarge,
                &format!("request body is larger than {limit} bytes"),
                None,
                gql,
            )
        }) as ErrorFn
    })
}

pub async fn get_graphql(
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    // Parsed leniently by hand: a malformed query string must still get a GraphQL-shaped answer.
    let params = super::query_params(raw.as_deref());
    let gql = wants_graphql_response(&headers);
    let Some(query) = params.get("query") else {
        let html = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
        if html {
            return Redirect::temporary("/playground/").into_response();
        }
        return error_response(
            StatusCode::BAD_REQUEST,
            Code::BadUserInput,
            "missing `query` parameter",
            Some("query"),
            gql,
        );
    };
    let mut request = async_graphql::Request::new(query.clone());
    if let Some(op) = params.get("operationName") {
        request = request.operation_name(op.clone());
    }
    if let Some(vars) = params.get("variables") {
        match serde_json::from_str::<serde_json::Value>(vars) {
            Ok(v) => request = request.variables(async_graphql::Variables::from_json(v)),
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    Code::BadUserInput,
                    &format!("`variables` is not JSON: {e}"),
                    Some("variables"),
                    gql,
                );
            }
        }
    }
    // Mutations change state and must not ride on GET (caches, prefetchers, CSRF).
    if let Ok(doc) = async_graphql::parser::parse_query(query) {
        use async_graphql::parser::types::OperationType;
        let is_mutation = doc.operations.iter().any(|(name, op)| {
            let selected = match (request.operation_name.as_deref(), name) {
                (Some(wanted), Some(n)) => wanted == n.as_str(),
                _ => true,
            };
            selected && op.node.ty != OperationType::Query
        });
        if is_mutation {
            return error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                Code::BadUserInput,
                "mutations and subscriptions need POST",
                None,
                gql,
            );
        }
    }
    execute(&s, &headers, peer, request, gql).await
}

async fn execute(
    s: &ServerState,
    headers: &HeaderMap,
    peer: SocketAddr,
    request: async_graphql::Request,
    gql: bool,
) -> Response {
    let ip = client_ip(&s.app, headers, peer);
    let rid = request_id(headers);
    let token = match super::bearer(headers) {
        Ok(t) => t,
        Err(e) => return from_error(&e, gql),
    };
    let organization = headers.get("x-organization-id").and_then(|v| v.to_str().ok());
    let entrance = Entrance {
        source: Source::Graphql,
        bearer: token.map(|token| Bearer { token, ip: ip.0, organization }),
        ip,
        route: None,
    };
    let now = s.app.clock.now_ms();
    let Admitted { request, mut ticket } = match pipeline::admit(&s.app, entrance, request).await {
        Ok(admitted) => admitted,
        Err(refused) => return refusal(refused, gql, now),
    };
    let mut response = pipeline::execute(&s.schemas, request, &ticket.operation).await;
    let ran = ticket.settle(&s.app, &mut response, &rid.0).await;
    if let Some(t) = ticket.throttle() {
        response.extensions.insert("cost".into(), t.to_value());
    }
    let status = if gql && !ran { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let mut resp = json_response(status, &pipeline::Wire::of(&response, ran), gql);
    crate::limits::headers::apply(resp.headers_mut(), &ticket.decision, now);
    let op = if ran { ticket.operation.metric.clone() } else { std::sync::Arc::from("invalid") };
    resp.extensions_mut().insert(super::observe::MetricOp(op));
    tagged(resp, ticket.usage.take())
}

/// Answers an operation the pipeline refused: the error with its code and status (a request error
/// is 200, or 400 with `application/graphql-response+json`), the rate-limit headers when a decision
/// was made, and the usage tag of a known caller.
fn refusal(refused: Refused, gql: bool, now: i64) -> Response {
    let mut resp = from_error(&refused.error, gql);
    if refused.stage == Stage::Request {
        *resp.status_mut() = if gql { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    }
    if let Some(d) = &refused.decision {
        crate::limits::headers::apply(resp.headers_mut(), d, now);
    }
    tagged(resp, refused.usage)
}

/// Leaves the usage tag for the metering layer.
pub fn tagged(mut resp: Response, tag: Option<UsageTag>) -> Response {
    if let Some(t) = tag {
        resp.extensions_mut().insert(t);
    }
    resp
}
