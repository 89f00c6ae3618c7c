//! GraphQL over HTTP (POST and GET). Bad requests get GraphQL-shaped errors with a code and the
//! right status: malformed JSON 400, wrong content type 415, oversized body 413, bad credentials
//! 401/403. With `Accept: application/graphql-response+json` a request that never executed is 400.

use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{ServerState, client_ip, principal_from_headers, request_id};
use crate::error::{Code, Error};
use crate::graphql::loaders::loaders;
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
    json_response(status, &body, gql)
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
    // The credential and limit futures hold large cache futures; boxing them keeps this handler's
    // own future small, which is moved on every poll setup (measured: fewer memmoves per request).
    let principal = match Box::pin(principal_from_headers(&s.app, headers, ip)).await {
        Ok(p) => p,
        Err(e) => return from_error(&e, gql),
    };
    let (mut request, operation) = with_cached_document(&s.app, request);
    let units = crate::limits::costs::units(&s.app, &operation.roots, None);
    // A call by an identified caller is metered (by the outer layer, from this tag).
    let mut tag = principal.as_ref().map(|p| UsageTag {
        org_id: p.org_id.clone(),
        api_key_id: p.key_id().cloned(),
        source: Source::Graphql,
        operation: operation.label.clone(),
        cost_units: 0,
        quota_units: 0,
        status: None,
    });
    let measured = match crate::graphql::refuse_nul(&request) {
        Ok(()) => crate::limits::cost::measure(&s.app, principal.as_ref(), &mut request).await,
        Err(e) => Err(e),
    };
    let points = match measured {
        Ok(p) => p,
        Err(e) => {
            // Too costly is a request error, answered like a validation error.
            let mut resp = from_error(&e, gql);
            *resp.status_mut() = if gql { StatusCode::BAD_REQUEST } else { StatusCode::OK };
            return tagged(resp, tag);
        }
    };
    let (decision, _permit) =
        match Box::pin(crate::limits::service::check(&s.app, principal.as_ref(), ip.0, units, points)).await {
            Ok(d) => d,
            Err(e) => return tagged(from_error(&e, gql), tag),
        };
    let now = s.app.clock.now_ms();
    if let Some(e) = decision.refusal_error() {
        let mut resp = from_error(&e, gql);
        crate::limits::headers::apply(resp.headers_mut(), &decision, now);
        return tagged(resp, tag);
    }
    if let Some(t) = &mut tag {
        t.cost_units = points;
        t.quota_units = units;
    }
    let throttle = crate::limits::cost::throttle_of(&decision, points).filter(|_| points > 0);
    let decision = std::sync::Arc::new(decision);
    // Inserted in place: `Request::data` takes and returns the (large) request by value.
    request.data.insert(loaders(s.app.clone()));
    request.data.insert(ip);
    request.data.insert(decision.clone());
    if let Some(p) = principal {
        request.data.insert(p);
    }
    let mut response = execute_operation(&s.schemas, request, &operation).await;
    if let Some(t) = throttle {
        response.extensions.insert("cost".into(), t.to_value());
    }
    // A request that ran has data, or errors with a path (a field failed); one that never ran
    // (parse or validation error) has neither.
    let executed = !matches!(response.data, async_graphql::Value::Null)
        || response.errors.is_empty()
        || response.errors.iter().any(|e| !e.path.is_empty());
    normalise_errors(&mut response.errors, &s.app.config, &rid.0);
    if let (Some(t), Some(first)) = (&mut tag, response.errors.first()) {
        t.status = first
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .and_then(|v| if let async_graphql::Value::String(s) = v { Code::parse(s) } else { None })
            .map(|c| c.http_status());
    }
    let status = if gql && !executed { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let mut resp = json_response(status, &response, gql);
    crate::limits::headers::apply(resp.headers_mut(), &decision, now);
    tagged(resp, tag)
}

/// Leaves the usage tag for the metering layer.
pub fn tagged(mut resp: Response, tag: Option<UsageTag>) -> Response {
    if let Some(t) = tag {
        resp.extensions_mut().insert(t);
    }
    resp
}

/// What metering and limits need to know of an operation.
#[derive(Clone)]
pub struct OperationInfo {
    /// `query Name` for a named operation, else its type and root fields (`query viewer,plans`).
    pub label: Arc<str>,
    /// Its root fields as `Query.viewer`, `Mutation.createApiKey`: what per-operation costs name.
    pub roots: Arc<[String]>,
    /// For an operation of a cached document that declares no variables: set once it has passed
    /// full validation. Validation then depends on nothing but the document and the schema, so
    /// later runs skip the rules that cannot change their verdict (see [`execute_operation`]).
    pub validated: Option<Arc<AtomicBool>>,
}

/// A parsed document and what each of its operations is.
#[derive(Clone)]
pub struct CachedDocument {
    pub doc: async_graphql::parser::types::ExecutableDocument,
    pub operations: Arc<[(Option<String>, OperationInfo)]>,
}

fn describe(doc: &async_graphql::parser::types::ExecutableDocument) -> Arc<[(Option<String>, OperationInfo)]> {
    use async_graphql::parser::types::{OperationType, Selection};
    doc.operations
        .iter()
        .map(|(name, op)| {
            let (ty, root) = match op.node.ty {
                OperationType::Query => ("query", "Query"),
                OperationType::Mutation => ("mutation", "Mutation"),
                OperationType::Subscription => ("subscription", "Subscription"),
            };
            let mut fields: Vec<&str> = op
                .node
                .selection_set
                .node
                .items
                .iter()
                .filter_map(|i| match &i.node {
                    Selection::Field(f) => Some(f.node.name.node.as_str()),
                    _ => None,
                })
                .collect();
            fields.sort_unstable();
            fields.dedup();
            // The label is part of the roll-ups' keys (PostgreSQL indexes refuse rows over ~2.7 KB):
            // long names and field lists are cut to 120 bytes.
            let mut label = match name {
                Some(n) => format!("{ty} {n}"),
                None => format!("{ty} {}", fields.join(",")),
            };
            if label.len() > 120 {
                let mut end = 117;
                while !label.is_char_boundary(end) {
                    end -= 1;
                }
                label.truncate(end);
                label.push_str("...");
            }
            let roots: Arc<[String]> = fields.iter().map(|f| format!("{root}.{f}")).collect();
            let validated = op.node.variable_definitions.is_empty().then(|| Arc::new(AtomicBool::new(false)));
            (name.map(|n| n.to_string()), OperationInfo { label: Arc::from(label), roots, validated })
        })
        .collect()
}

fn pick(operations: &[(Option<String>, OperationInfo)], wanted: Option<&str>) -> OperationInfo {
    static INVALID: std::sync::LazyLock<OperationInfo> = std::sync::LazyLock::new(|| OperationInfo {
        label: Arc::from("invalid"),
        roots: Arc::new([]),
        validated: None,
    });
    operations
        .iter()
        .find(|(name, _)| wanted.is_none() || name.as_deref() == wanted)
        .map(|(_, info)| info.clone())
        .unwrap_or_else(|| INVALID.clone())
}

/// Reuses the parsed document of a query seen before (queries up to 16 KiB are cached), and
/// describes the operation for metering and per-operation costs.
pub fn with_cached_document(
    app: &crate::app::App,
    mut request: async_graphql::Request,
) -> (async_graphql::Request, OperationInfo) {
    if request.query.len() <= 16 * 1024
        && let Some(cached) = app.documents.get(&request.query)
    {
        let info = pick(&cached.operations, request.operation_name.as_deref());
        request.set_parsed_query(cached.doc);
        return (request, info);
    }
    let operation = request.operation_name.clone();
    let cacheable = request.query.len() <= 16 * 1024;
    let Ok(doc) = request.parsed_query() else {
        return (request, pick(&[], None));
    };
    let operations = describe(doc);
    let mut info = pick(&operations, operation.as_deref());
    if !cacheable {
        info.validated = None;
    } else {
        let cached = CachedDocument { doc: doc.clone(), operations };
        app.documents.insert(request.query.clone(), cached);
    }
    (request, info)
}

/// Executes a request prepared by [`with_cached_document`]. An operation already known to pass
/// full validation runs on the schema that keeps only the checks whose verdict can differ between
/// runs (fragment cycles, depth, complexity); any other runs through full validation, and marks
/// its operation validated when no request-level error came back.
pub async fn execute_operation(
    schemas: &super::Schemas,
    request: async_graphql::Request,
    operation: &OperationInfo,
) -> async_graphql::Response {
    let known = operation.validated.as_ref().is_some_and(|v| v.load(Ordering::Relaxed));
    let schema = if known { &schemas.validated } else { &schemas.full };
    let response = Box::pin(schema.execute(request)).await;
    if !known
        && let Some(flag) = &operation.validated
        && response.errors.iter().all(|e| !e.path.is_empty())
    {
        flag.store(true, Ordering::Relaxed);
    }
    response
}

/// Every error leaves with a code: parse, validation and coercion errors become `BAD_USER_INPUT`
/// (the limits named in the message); `INTERNAL` errors also get the request id.
pub fn normalise_errors(errors: &mut [async_graphql::ServerError], config: &crate::config::Config, request_id: &str) {
    crate::graphql::errors::ErrorCodes {
        max_depth: config.graphql_max_depth,
        max_complexity: config.graphql_max_complexity,
    }
    .fix(errors);
    for err in errors {
        let ext = err.extensions.get_or_insert_with(Default::default);
        if matches!(ext.get("code"), Some(async_graphql::Value::String(s)) if s == Code::Internal.as_str()) {
            ext.set("requestId", request_id);
        }
    }
}
