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
