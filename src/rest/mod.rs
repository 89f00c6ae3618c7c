//! The REST compatibility layer (`/api/v1`): a table of routes, each executing a GraphQL operation
//! on the same schema with the caller's principal, answered in the seeds' envelope with snake_case
//! keys and the right status. Authorization, validation and errors are the GraphQL ones by
//! construction.

mod case;
pub mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, RawPathParams, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use serde_json::{Value, json};

use crate::auth::Bearer;
use crate::error::{Code, Error, Result};
use crate::server::pipeline::{self, Admitted, Entrance, Stage};
use crate::server::{ServerState, client_ip, request_id};
use crate::usage::meter::{Source, UsageTag};
use routes::{Route, Shape};

/// What a route's variable mapping reads: path parameters, the query string and the JSON body
/// (keys already camelCased).
pub struct RestInput {
    path: HashMap<String, String>,
    query: HashMap<String, String>,
    body: Option<Value>,
}

impl RestInput {
    pub fn path(&self, name: &str) -> &str {
        self.path.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// The body as a JSON object (`{}` when empty).
    pub fn body_object(&self) -> Result<Value> {
        match &self.body {
            None => Ok(json!({})),
            Some(v @ Value::Object(_)) => Ok(v.clone()),
            Some(_) => Err(Error::bad_input("body", "must be a JSON object")),
        }
    }
}

pub fn routes() -> Router<ServerState> {
    let mut router = Router::new();
    for route in routes::table() {
        let route = Arc::new(route);
        let filter = MethodFilter::try_from(route.method.clone()).unwrap_or(MethodFilter::GET);
        let path = route.path;
        let handler = move |state, peer, params, query, headers, body| {
            handle(route.clone(), state, peer, params, query, headers, body)
        };
        router = router.route(path, on(filter, handler));
    }
    let doc = Arc::new(openapi());
    router = router.route("/openapi.json", axum::routing::get(move || async move { axum::Json((*doc).clone()) }));
    router
        .fallback(|headers: HeaderMap| async move {
            envelope_error(
                &request_id(&headers).0,
                StatusCode::NOT_FOUND,
                "not_found",
                "no such route in /api/v1",
                None,
            )
        })
        .method_not_allowed_fallback(|headers: HeaderMap| async move {
            envelope_error(
                &request_id(&headers).0,
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept that method",
                None,
            )
        })
}

fn meta(trace_id: &str) -> Value {
    json!({
        "timestamp": crate::platform::clock::rfc3339(chrono::Utc::now().timestamp_millis()),
        "rate_limit": Value::Null,
        "trace_id": trace_id,
    })
}

/// The seeds' 429 body (seed 001 §10.3) with the limit that refused.
fn limited(trace_id: &str, d: &crate::limits::limiter::Decision, e: &Error, now_ms: i64) -> Response {
    let window = d.policy.windows.get(d.binding);
    let (limit, period) = match (d.refusal, window) {
        (Some(crate::limits::limiter::Refusal::Quota), _) => (d.policy.monthly_quota.unwrap_or(0), "month".to_string()),
        (Some(crate::limits::limiter::Refusal::Concurrency), _) => {
            (d.policy.concurrency.unwrap_or(0), "concurrent".to_string())
        }
        (_, Some(w)) => (w.limit, format!("{}s", w.period_ms / 1000)),
        _ => (0, String::new()),
    };
    let details = json!({ "limit": limit, "period": period, "retry_after": ((d.retry_after_ms + 999) / 1000).max(1) });
    let code = e.code();
    let mut resp =
        envelope_error(trace_id, StatusCode::TOO_MANY_REQUESTS, code.rest_type(), &e.public_message(), Some(details));
    crate::limits::headers::apply(resp.headers_mut(), d, now_ms);
    resp
}

fn envelope_error(trace_id: &str, status: StatusCode, kind: &str, message: &str, details: Option<Value>) -> Response {
    let body = json!({
        "status": "error",
        "code": status.as_u16(),
        "error": { "type": kind, "message": message, "details": details.unwrap_or_else(|| json!({})) },
        "meta": meta(trace_id),
    });
    (status, axum::Json(body)).into_response()
}

fn from_error(trace_id: &str, e: &Error) -> Response {
    e.log();
    let code = e.code();
    let details = match (e.field(), e.reason()) {
        (Some(f), _) => Some(json!({ "field": case::to_snake(f) })),
        (None, Some(reason)) => Some(json!({ "reason": reason })),
        (None, None) => None,
    };
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = envelope_error(trace_id, status, code.rest_type(), &e.public_message(), details);
    if code == Code::Unauthenticated {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, crate::server::www_authenticate(e));
    }
    if let Error::Limited { retry_after_secs, .. } = e
        && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    route: Arc<Route>,
    state: State<ServerState>,
    peer: ConnectInfo<SocketAddr>,
    params: RawPathParams,
    raw: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut tag = None;
    let label = route.label.clone();
    let mut resp = handle_inner(route, state, peer, params, raw, headers, body, &mut tag).await;
    resp.extensions_mut().insert(crate::server::MetricOp(label));
    crate::server::tagged(resp, tag)
}

/// Serves a route; once the caller is known, `tag` holds what the metering layer records.
#[allow(clippy::too_many_arguments)]
async fn handle_inner(
    route: Arc<Route>,
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    params: RawPathParams,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
    tag: &mut Option<UsageTag>,
) -> Response {
    let query = crate::server::query_params(raw.as_deref());
    let rid = request_id(&headers);
    let trace = rid.0.clone();
    let bytes = match axum::body::to_bytes(body, s.app.config.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            let msg = format!("request body is larger than {} bytes", s.app.config.max_body_bytes);
            return envelope_error(
                &trace,
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::PayloadTooLarge.rest_type(),
                &msg,
                None,
            );
        }
    };
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !ct.to_ascii_lowercase().starts_with("application/json") {
            return envelope_error(
                &trace,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "validation_error",
                "request bodies must be `Content-Type: application/json`",
                None,
            );
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => Some(case::camel_keys(v)),
            Err(e) => {
                return envelope_error(
                    &trace,
                    StatusCode::BAD_REQUEST,
                    "validation_error",
                    &format!("malformed JSON body: {e}"),
                    None,
                );
            }
        }
    };
    let input = RestInput { path: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), query, body };

    let ip = client_ip(&s.app, &headers, peer);
    let token = match crate::server::bearer(&headers) {
        Ok(t) => t,
        Err(e) => return from_error(&trace, &e),
    };
    let variables = match (route.variables)(&input) {
        Ok(v) => v,
        Err(e) => return from_error(&trace, &e),
    };
    let organization = headers.get("x-organization-id").and_then(|v| v.to_str().ok());
    let entrance = Entrance {
        source: Source::Rest,
        bearer: token.map(|token| Bearer { token, ip: ip.0, organization }),
        ip,
        route: Some(&route.label),
    };
    let request = async_graphql::Request::new(route.document).variables(async_graphql::Variables::from_json(variables));
    let now = s.app.clock.now_ms();
    let Admitted { request, mut ticket } = match pipeline::admit(&s.app, entrance, request).await {
        Ok(admitted) => admitted,
        Err(refused) => {
            *tag = refused.usage;
            return match (refused.stage, &refused.decision) {
                (Stage::Limit, Some(d)) => limited(&trace, d, &refused.error, now),
                (_, Some(d)) => with_limit_headers(from_error(&trace, &refused.error), d, now),
                (_, None) => from_error(&trace, &refused.error),
            };
        }
    };
    let mut response = pipeline::execute(&s.schemas, request, &ticket.operation).await;
    ticket.settle(&s.app, &mut response, &trace).await;
    *tag = ticket.usage.take();
    let decision = ticket.decision.clone();
    if !response.errors.is_empty() {
        let err = &response.errors[0];
        let ext = err.extensions.as_ref();
        let code = ext
            .and_then(|e| e.get("code"))
            .and_then(|v| if let async_graphql::Value::String(s) = v { Code::parse(s) } else { None })
            .unwrap_or(Code::BadUserInput);
        let field = ext
            .and_then(|e| e.get("field"))
            .and_then(|v| if let async_graphql::Value::String(s) = v { Some(case::to_snake(s)) } else { None });
        let reason = ext
            .and_then(|e| e.get("reason"))
            .and_then(|v| if let async_graphql::Value::String(s) = v { Some(s.clone()) } else { None });
        let details = match (field, reason) {
            (Some(f), _) => Some(json!({ "field": f })),
            (None, Some(r)) => Some(json!({ "reason": r })),
            (None, None) => None,
        };
        let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let resp = envelope_error(&trace, status, code.rest_type(), &err.message, details);
        return with_limit_headers(resp, &decision, now);
    }
    if route.status == 204 {
        return with_limit_headers(StatusCode::NO_CONTENT.into_response(), &decision, now);
    }
    let data = response.data.into_json().unwrap_or(Value::Null);
    // `app.reviews`: a field below the root one.
    let payload = route.field.split('.').fold(data, |v, f| v.get(f).cloned().unwrap_or(Value::Null));
    let mut meta = meta(&trace);
    meta["rate_limit"] = crate::limits::headers::envelope(&decision, now);
    let payload = match route.shape {
        Shape::Html(render) => return with_limit_headers(html_page(render(&payload)), &decision, now),
        Shape::AsIs => payload,
        Shape::List => {
            let nodes: Vec<Value> = payload["edges"]
                .as_array()
                .map(|edges| edges.iter().map(|e| e["node"].clone()).collect())
                .unwrap_or_default();
            meta["pagination"] = case::snake_keys(json!({
                "totalCount": payload["totalCount"],
                "hasMore": payload["pageInfo"]["hasNextPage"],
                "nextCursor": payload["pageInfo"]["endCursor"],
            }));
            Value::Array(nodes)
        }
    };
    let status = StatusCode::from_u16(route.status).unwrap_or(StatusCode::OK);
    let body = json!({
        "id": format!("req_{}", trace.replace('-', "")),
        "status": "success",
        "code": status.as_u16(),
        "data": case::snake_keys(payload),
        "meta": meta,
    });
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert("x-api-version", HeaderValue::from_static("v1"));
    with_limit_headers(resp, &decision, now)
}

/// A printable page: no caching, no framing, no scripts.
fn html_page(html: std::result::Result<String, askama::Error>) -> Response {
    let (status, body) = match html {
        Ok(b) => (StatusCode::OK, b),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Error</title><p>The page could not be shown.</p>".to_string(),
            )
        }
    };
    let mut r = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    let h = r.headers_mut();
    crate::server::pages::secure_headers(h, crate::server::pages::PAGE_CSP);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    r
}

fn with_limit_headers(mut resp: Response, d: &crate::limits::limiter::Decision, now_ms: i64) -> Response {
    crate::limits::headers::apply(resp.headers_mut(), d, now_ms);
    resp
}

/// The OpenAPI 3 document of the v1 routes, generated from the route table.
pub fn openapi() -> Value {
    let mut paths = serde_json::Map::new();
    for route in routes::table() {
        let path = format!("/api/v1{}", route.path);
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let mut responses = serde_json::Map::new();
        let ok = if route.status == 204 {
            json!({ "description": "Success (no body)" })
        } else if matches!(route.shape, Shape::Html(_)) {
            json!({ "description": "Success: a printable page", "content": { "text/html": { "schema": { "type": "string" } } } })
        } else {
            json!({ "description": "Success", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Envelope" } } } })
        };
        responses.insert(route.status.to_string(), ok);
        for (status, what) in [
            ("400", "Malformed JSON"),
            ("401", "Missing or invalid credential"),
            ("403", "Credential lacks a scope or may not be used from this IP"),
            ("404", "Not found (including another organization's ids)"),
            ("409", "Conflict"),
            ("413", "Body too large"),
            ("415", "Body is not application/json"),
            ("422", "Invalid input; error.details.field names it"),
        ] {
            responses.insert(
                status.into(),
                json!({ "description": what, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }),
            );
        }
        let mut op = json!({
            "summary": route.summary,
            "operationId": format!("{}_{}", route.method.as_str().to_lowercase(), route.path.replace(['/', '{', '}'], "_").trim_matches('_')),
            "parameters": params,
            "responses": responses,
            "x-graphql-operation": route.document,
        });
        if matches!(route.method, axum::http::Method::POST | axum::http::Method::PUT) {
            op["requestBody"] =
                json!({ "required": false, "content": { "application/json": { "schema": { "type": "object" } } } });
        }
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        entry[route.method.as_str().to_lowercase()] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Gantry REST v1",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Each route executes a GraphQL operation (x-graphql-operation) on the same schema as /graphql.",
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "API key (gk_live_…, gk_test_…) or session token (gks_…)" } },
            "schemas": {
                "Envelope": { "type": "object", "properties": {
                    "id": { "type": "string" }, "status": { "type": "string", "enum": ["success"] }, "code": { "type": "integer" },
                    "data": {}, "meta": { "$ref": "#/components/schemas/Meta" } } },
                "Error": { "type": "object", "properties": {
                    "status": { "type": "string", "enum": ["error"] }, "code": { "type": "integer" },
                    "error": { "type": "object", "properties": { "type": { "type": "string" }, "message": { "type": "string" }, "details": { "type": "object" } } },
                    "meta": { "$ref": "#/components/schemas/Meta" } } },
                "Meta": { "type": "object", "properties": {
                    "timestamp": { "type": "string", "format": "date-time" }, "trace_id": { "type": "string" },
                    "rate_limit": { "type": "object", "nullable": true } } },
            },
        },
    })
}
