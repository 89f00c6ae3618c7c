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
use axum::extract::{ConnectInfo, Query, RawPathParams, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use serde_json::{Value, json};

use crate::error::{Code, Error, Result};
use crate::graphql::loaders::loaders;
use crate::server::{ServerState, client_ip, principal_from_headers, request_id};
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
    let details = e.field().map(|f| json!({ "field": case::to_snake(f) }));
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    envelope_error(trace_id, status, code.rest_type(), &e.public_message(), details)
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    route: Arc<Route>,
    State(s): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    params: RawPathParams,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
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
    let principal = match principal_from_headers(&s.app, &headers, ip).await {
        Ok(p) => p,
        Err(e) => return from_error(&trace, &e),
    };
    let variables = match (route.variables)(&input) {
        Ok(v) => v,
        Err(e) => return from_error(&trace, &e),
    };
    let mut request = async_graphql::Request::new(route.document)
        .variables(async_graphql::Variables::from_json(variables))
        .data(loaders(s.app.clone()))
        .data(ip)
        .data(rid.clone());
    if let Some(p) = principal {
        request = request.data(p);
    }
    let mut response = s.schema.execute(request).await;
    if !response.errors.is_empty() {
        crate::server::normalise_graphql_errors(&mut response.errors, &s.app.config, &trace);
        let err = &response.errors[0];
        let ext = err.extensions.as_ref();
        let code = ext
            .and_then(|e| e.get("code"))
            .and_then(|v| if let async_graphql::Value::String(s) = v { Code::parse(s) } else { None })
            .unwrap_or(Code::BadUserInput);
        let field = ext
            .and_then(|e| e.get("field"))
            .and_then(|v| if let async_graphql::Value::String(s) = v { Some(case::to_snake(s)) } else { None });
        let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        return envelope_error(&trace, status, code.rest_type(), &err.message, field.map(|f| json!({ "field": f })));
    }
    if route.status == 204 {
        return StatusCode::NO_CONTENT.into_response();
    }
    let data = response.data.into_json().unwrap_or(Value::Null);
    let payload = data.get(route.field).cloned().unwrap_or(Value::Null);
    let mut meta = meta(&trace);
    let payload = match route.shape {
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
    resp
}
