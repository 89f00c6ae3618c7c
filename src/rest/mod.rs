//! The REST compatibility layer (`/api/v1`): a table of routes, each executing a GraphQL operation
//! on the same schema with the caller's principal, answered in the seeds' envelope with snake_case
//! keys and the right status. Authorization, validation and errors are the GraphQL ones by
//! construction.

mod batch;
mod case;
pub mod openapi;
mod realtime;
pub mod routes;
pub mod typed;
pub mod versions;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, OriginalUri, RawPathParams, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use serde_json::{Value, json};

use crate::auth::Bearer;
use crate::error::{Code, Error};
use crate::limits::limiter::Decision;
use crate::server::pipeline::{self, Admitted, Entrance, Stage};
use crate::server::{ServerState, client_ip, request_id};
use crate::usage::meter::{Source, UsageTag};
use routes::{Route, Shape};
use typed::Types;
use versions::Version;

/// A route table as served by one version.
struct Table {
    version: Version,
    routes: Vec<Arc<Route>>,
}

impl Table {
    fn new(version: Version) -> Table {
        let mut rows = routes::table();
        if version == Version::V2 {
            rows.extend(routes::v2_only());
            // Metered as what was called, so usage splits calls by version.
            for r in &mut rows {
                r.label = Arc::from(format!("{} {}{}", r.method, version.prefix(), r.path));
            }
        }
        Table { version, routes: rows.into_iter().map(Arc::new).collect() }
    }

    /// The row for a method and a path under the version's prefix, with its path parameters
    /// (static segments win over parameters, as in the router).
    fn find(&self, method: &Method, path: &str) -> Option<(Arc<Route>, HashMap<String, String>)> {
        let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let mut best: Option<(usize, &Arc<Route>, HashMap<String, String>)> = None;
        for r in self.routes.iter().filter(|r| r.method == *method) {
            let pattern: Vec<&str> = r.path.split('/').collect();
            if pattern.len() != segs.len() {
                continue;
            }
            let mut params = HashMap::new();
            let mut exact = 0;
            let fits =
                pattern.iter().zip(&segs).all(|(p, s)| match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(name) if !s.is_empty() => {
                        params.insert(name.to_string(), percent_decode(s));
                        true
                    }
                    Some(_) => false,
                    None => {
                        exact += usize::from(p == s);
                        p == s
                    }
                });
            if fits && best.as_ref().is_none_or(|(e, _, _)| exact > *e) {
                best = Some((exact, r, params));
            }
        }
        best.map(|(_, r, p)| (r.clone(), p))
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// The `/api/v1` or `/api/v2` router over the schema's types.
pub fn routes(types: Arc<Types>, version: Version) -> Router<ServerState> {
    let table = Table::new(version);
    let mut router = Router::new();
    for route in &table.routes {
        let filter = MethodFilter::try_from(route.method.clone()).unwrap_or(MethodFilter::GET);
        let path = route.path;
        let (route, types) = (route.clone(), types.clone());
        let handler = move |state, peer, uri: OriginalUri, params: RawPathParams, query, headers, body| {
            let path = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            handle(route.clone(), types.clone(), version, Request { state, peer, uri, path, query, headers, body })
        };
        router = router.route(path, on(filter, handler));
    }
    router = openapi::serve(router, &types, version);
    if version == Version::V2 {
        let tables = Arc::new([Table::new(Version::V1), Table::new(Version::V2)]);
        let types = types.clone();
        let handler =
            move |state, peer, headers, body| batch::serve(tables.clone(), types.clone(), state, peer, headers, body);
        router = router.route("/integrations/batch", axum::routing::post(handler));
    }
    let prefix = version.prefix();
    router
        .fallback(move |uri: OriginalUri, headers: HeaderMap| async move {
            let resp = envelope_error(
                &request_id(&headers).0,
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no such route in {prefix}"),
                None,
            );
            in_version(resp, version, &uri).await
        })
        .method_not_allowed_fallback(move |uri: OriginalUri, headers: HeaderMap| async move {
            let resp = envelope_error(
                &request_id(&headers).0,
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept that method",
                None,
            );
            in_version(resp, version, &uri).await
        })
}

/// `/api/...` without a version in the path: `X-API-Version` picks one (default v1).
pub fn unversioned(types: Arc<Types>) -> Router<ServerState> {
    let tables = Arc::new([Table::new(Version::V1), Table::new(Version::V2)]);
    let handler = move |state, peer, uri: OriginalUri, method: Method, query, headers: HeaderMap, body| {
        let (tables, types) = (tables.clone(), types.clone());
        async move {
            let trace = request_id(&headers).0;
            let version = match headers.get("x-api-version") {
                None => versions::DEFAULT,
                Some(v) => match v.to_str().map_err(|_| "must be text".to_string()).and_then(Version::parse) {
                    Ok(v) => v,
                    Err(why) => return version_error(&trace, &why),
                },
            };
            let table = tables.iter().find(|t| t.version == version).expect("a table per version");
            let under = uri.path().strip_prefix("/api").unwrap_or("");
            match table.find(&method, under) {
                Some((route, path)) => {
                    handle(route, types, version, Request { state, peer, uri, path, query, headers, body }).await
                }
                None => {
                    let resp =
                        envelope_error(&trace, StatusCode::NOT_FOUND, "not_found", "no such route in /api", None);
                    in_version(resp, version, &uri).await
                }
            }
        }
    };
    Router::new().route("/api/{*rest}", axum::routing::any(handler))
}

fn version_error(trace: &str, why: &str) -> Response {
    envelope_error(
        trace,
        StatusCode::BAD_REQUEST,
        Code::BadUserInput.rest_type(),
        &format!("X-API-Version: {why}"),
        Some(json!({ "field": "X-API-Version", "location": "header" })),
    )
}

/// What a route handler receives.
struct Request {
    state: State<ServerState>,
    peer: ConnectInfo<SocketAddr>,
    uri: OriginalUri,
    path: HashMap<String, String>,
    query: RawQuery,
    headers: HeaderMap,
    body: Body,
}

/// The answer as the version speaks: its headers, and for v2 the envelope without the legacy
/// `meta` wrapper (`{"id", "data"}`, lists with `has_more` and `next_cursor`; errors `{"id", "error"}`).
async fn in_version(mut resp: Response, version: Version, uri: &OriginalUri) -> Response {
    let under = uri.path().strip_prefix(version.prefix()).or_else(|| uri.path().strip_prefix("/api")).unwrap_or("");
    let under = match uri.query() {
        Some(q) => format!("{under}?{q}"),
        None => under.to_string(),
    };
    versions::stamp(resp.headers_mut(), version, &under);
    if version == Version::V1 {
        return resp;
    }
    let is_json =
        resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let Ok(v1) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let mut v2 = json!({ "id": v1["id"] });
    if v1.get("error").is_some() {
        v2["error"] = v1["error"].clone();
    } else {
        v2["data"] = v1["data"].clone();
        if let Some(p) = v1["meta"].get("pagination") {
            v2["has_more"] = p["has_more"].clone();
            v2["total_count"] = p["total_count"].clone();
            if let Some(c) = p.get("next_cursor") {
                v2["next_cursor"] = c.clone();
            }
        }
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(serde_json::to_vec(&v2).unwrap_or_default()))
}

fn meta(trace_id: &str) -> Value {
    json!({
        "timestamp": crate::platform::clock::rfc3339(chrono::Utc::now().timestamp_millis()),
        "rate_limit": Value::Null,
        "trace_id": trace_id,
    })
}

/// The envelope's `id`: the request id without dashes.
fn envelope_id(trace_id: &str) -> String {
    format!("req_{}", trace_id.replace('-', ""))
}

/// The seeds' 429 body (seed 001 §10.3) with the limit that refused.
fn limited(trace_id: &str, d: &Decision, e: &Error, now_ms: i64) -> Response {
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
    let rate_limit = crate::limits::headers::envelope(d, now_ms);
    let resp = limited_envelope(
        trace_id,
        StatusCode::TOO_MANY_REQUESTS,
        code.rest_type(),
        &e.public_message(),
        Some(details),
        rate_limit,
    );
    with_limit_headers(resp, d, now_ms)
}

fn envelope_error(trace_id: &str, status: StatusCode, kind: &str, message: &str, details: Option<Value>) -> Response {
    limited_envelope(trace_id, status, kind, message, details, Value::Null)
}

/// An error envelope; `rate_limit` is `meta.rate_limit` (null before a limit applied).
fn limited_envelope(
    trace_id: &str,
    status: StatusCode,
    kind: &str,
    message: &str,
    details: Option<Value>,
    rate_limit: Value,
) -> Response {
    let mut meta = meta(trace_id);
    meta["rate_limit"] = rate_limit;
    let body = json!({
        "id": envelope_id(trace_id),
        "status": "error",
        "code": status.as_u16(),
        "error": { "type": kind, "message": message, "details": details.unwrap_or_else(|| json!({})) },
        "meta": meta,
    });
    (status, axum::Json(body)).into_response()
}

fn bind_error(trace_id: &str, e: &typed::BindError, rate_limit: Value) -> Response {
    limited_envelope(
        trace_id,
        StatusCode::UNPROCESSABLE_ENTITY,
        Code::BadUserInput.rest_type(),
        &format!("{}: {}", e.field, e.message),
        Some(json!({ "field": e.field, "location": e.location })),
        rate_limit,
    )
}

/// The details of an error naming a field, in REST terms.
fn field_details(route: Option<&Route>, field: Option<&str>, reason: Option<&str>) -> Option<Value> {
    match (field, reason) {
        (Some(f), _) => {
            let (name, location) = match route {
                Some(r) => r.sig.rest_field(f),
                None if f.contains('-') => (f.to_string(), Some("header")),
                None => (case::to_snake(f), None),
            };
            Some(match location {
                Some(l) => json!({ "field": name, "location": l }),
                None => json!({ "field": name }),
            })
        }
        (None, Some(r)) => Some(json!({ "reason": r })),
        (None, None) => None,
    }
}

fn from_error(trace_id: &str, route: Option<&Route>, e: &Error, rate_limit: Value) -> Response {
    e.log();
    let code = e.code();
    let details = field_details(route, e.field(), e.reason());
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = limited_envelope(trace_id, status, code.rest_type(), &e.public_message(), details, rate_limit);
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

async fn handle(route: Arc<Route>, types: Arc<Types>, version: Version, req: Request) -> Response {
    let mut tag = None;
    let label = route.label.clone();
    let uri = req.uri.clone();
    let resp = match version_conflict(&req.headers, version) {
        Some(resp) => resp,
        None => handle_inner(&route, &types, req, &mut tag).await,
    };
    let mut resp = in_version(resp, version, &uri).await;
    resp.extensions_mut().insert(crate::server::MetricOp(label));
    crate::server::tagged(resp, tag)
}

/// A versioned path with an `X-API-Version` header naming another version (or nothing valid).
fn version_conflict(headers: &HeaderMap, version: Version) -> Option<Response> {
    let value = headers.get("x-api-version")?;
    let trace = request_id(headers).0;
    match value.to_str().map_err(|_| "must be text".to_string()).and_then(Version::parse) {
        Ok(v) if v == version => None,
        Ok(v) => Some(version_error(
            &trace,
            &format!("names {} but the path is {}; use one or the other", v.name(), version.prefix()),
        )),
        Err(why) => Some(version_error(&trace, &why)),
    }
}

/// Serves a route; once the caller is known, `tag` holds what the metering layer records.
#[allow(clippy::too_many_arguments)]
async fn handle_inner(route: &Arc<Route>, types: &Arc<Types>, req: Request, tag: &mut Option<UsageTag>) -> Response {
    let Request { state: State(s), peer: ConnectInfo(peer), path, query: RawQuery(raw), headers, body, .. } = req;
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
    let takes_body = matches!(route.method, Method::POST | Method::PUT | Method::PATCH);
    let body = if !takes_body || bytes.iter().all(u8::is_ascii_whitespace) {
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
            Ok(v) => Some(v),
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

    let ip = client_ip(&s.app, &headers, peer);
    let token = match crate::server::bearer(&headers) {
        Ok(t) => t,
        Err(e) => return from_error(&trace, Some(route), &e, Value::Null),
    };
    if matches!(route.shape, Shape::Events) && token.is_none() {
        return from_error(&trace, Some(route), &Error::unauthenticated("a credential is required"), Value::Null);
    }
    // A request that does not bind is still authenticated, limited and metered like any other:
    // it is admitted without variables and answered with what is wrong instead of running.
    let (variables, unbound) = match route.sig.bind(types, &path, &query, body) {
        Ok(v) => (v, None),
        Err(e) => (json!({}), Some(e)),
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
                (_, Some(d)) => {
                    let rl = crate::limits::headers::envelope(d, now);
                    with_limit_headers(from_error(&trace, Some(route), &refused.error, rl), d, now)
                }
                (_, None) => from_error(&trace, Some(route), &refused.error, Value::Null),
            };
        }
    };
    if let Some(e) = unbound {
        let error: async_graphql::Error = Error::bad_input(e.field.clone(), e.message.clone()).into();
        let mut response = async_graphql::Response::from_errors(vec![error.into_server_error(Default::default())]);
        ticket.settle(&s.app, &mut response, &trace).await;
        *tag = ticket.usage.take();
        let decision = ticket.decision.clone();
        let rl = crate::limits::headers::envelope(&decision, now);
        return with_limit_headers(bind_error(&trace, &e, rl), &decision, now);
    }
    if matches!(route.shape, Shape::Events) {
        let caller = realtime::Caller {
            token: token.unwrap_or_default().to_string(),
            ip: ip.0,
            organization: organization.map(str::to_string),
        };
        let streamed = realtime::stream(&s, route.clone(), types.clone(), request, &mut ticket, caller, &trace).await;
        *tag = ticket.usage.take();
        let decision = ticket.decision.clone();
        return match streamed {
            Ok(resp) => with_limit_headers(resp, &decision, now),
            Err(e) => {
                if let Some(t) = tag.as_mut() {
                    t.status = Some(e.code().http_status());
                }
                let rl = crate::limits::headers::envelope(&decision, now);
                with_limit_headers(from_error(&trace, Some(route), &e, rl), &decision, now)
            }
        };
    }
    let mut response = pipeline::execute(&s.schemas, request, &ticket.operation).await;
    ticket.settle(&s.app, &mut response, &trace).await;
    *tag = ticket.usage.take();
    let decision = ticket.decision.clone();
    if !response.errors.is_empty() {
        let err = &response.errors[0];
        let ext = err.extensions.as_ref();
        let text = |name: &str| {
            ext.and_then(|e| e.get(name))
                .and_then(|v| if let async_graphql::Value::String(s) = v { Some(s.clone()) } else { None })
        };
        let code = text("code").and_then(|c| Code::parse(&c)).unwrap_or(Code::BadUserInput);
        let details = field_details(Some(route), text("field").as_deref(), text("reason").as_deref());
        let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let rl = crate::limits::headers::envelope(&decision, now);
        let resp = limited_envelope(&trace, status, code.rest_type(), &err.message, details, rl);
        return with_limit_headers(resp, &decision, now);
    }
    if route.status == 204 {
        return with_limit_headers(StatusCode::NO_CONTENT.into_response(), &decision, now);
    }
    if let Shape::Html(render) = route.shape {
        let data = response.data.into_json().unwrap_or(Value::Null);
        let payload = route.field.split('.').fold(data, |v, f| v.get(f).cloned().unwrap_or(Value::Null));
        return with_limit_headers(html_page(render(&payload)), &decision, now);
    }
    // `app.reviews`: a field below the root one.
    let data = route.sig.rest_data(types, response.data);
    let payload = route
        .field
        .split('.')
        .fold(data, |mut v, f| v.get_mut(case::to_snake(f)).map(Value::take).unwrap_or(Value::Null));
    let mut meta = meta(&trace);
    meta["rate_limit"] = crate::limits::headers::envelope(&decision, now);
    let payload = match route.shape {
        Shape::List => {
            let (nodes, pagination) = list_page(payload);
            meta["pagination"] = pagination;
            nodes
        }
        _ => payload,
    };
    let status = StatusCode::from_u16(route.status).unwrap_or(StatusCode::OK);
    let body = json!({
        "id": envelope_id(&trace),
        "status": "success",
        "code": status.as_u16(),
        "data": payload,
        "meta": meta,
    });
    let resp = (status, axum::Json(body)).into_response();
    with_limit_headers(resp, &decision, now)
}

/// A connection (snake_case keys) as its nodes and the pagination meta; `next_cursor` only when
/// there is a next page.
fn list_page(mut payload: Value) -> (Value, Value) {
    let nodes: Vec<Value> = payload
        .get_mut("edges")
        .and_then(Value::as_array_mut)
        .map(|edges| edges.iter_mut().map(|e| e.get_mut("node").map(Value::take).unwrap_or(Value::Null)).collect())
        .unwrap_or_default();
    let has_more = payload["page_info"]["has_next_page"].as_bool().unwrap_or(false);
    let mut pagination = json!({ "total_count": payload["total_count"].take(), "has_more": has_more });
    if has_more {
        pagination["next_cursor"] = payload["page_info"]["end_cursor"].take();
    }
    (Value::Array(nodes), pagination)
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

fn with_limit_headers(mut resp: Response, d: &Decision, now_ms: i64) -> Response {
    crate::limits::headers::apply(resp.headers_mut(), d, now_ms);
    resp
}
