//! The REST compatibility layer (`/api/v1`): a table of routes, each executing a GraphQL operation
//! on the same schema with the caller's principal, answered in the seeds' envelope with snake_case
//! keys and the right status. Authorization, validation and errors are the GraphQL ones by
//! construction.

mod batch;
mod case;
mod envelope;
pub mod openapi;
mod realtime;
pub mod routes;
pub mod schemas;
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
use envelope::Envelope;
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
            let trace = request_id(&headers).0;
            let resp = Envelope::new(version, &trace).error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no such route in {prefix}"),
                None,
            );
            stamped(resp, version, &uri)
        })
        .method_not_allowed_fallback(move |uri: OriginalUri, headers: HeaderMap| async move {
            let trace = request_id(&headers).0;
            let resp = Envelope::new(version, &trace).error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept that method",
                None,
            );
            stamped(resp, version, &uri)
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
                    Err(why) => return version_error(versions::DEFAULT, &trace, &why),
                },
            };
            let table = tables.iter().find(|t| t.version == version).expect("a table per version");
            let under = uri.path().strip_prefix("/api").unwrap_or("");
            match table.find(&method, under) {
                Some((route, path)) => {
                    handle(route, types, version, Request { state, peer, uri, path, query, headers, body }).await
                }
                None => {
                    let resp = Envelope::new(version, &trace).error(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        "no such route in /api",
                        None,
                    );
                    stamped(resp, version, &uri)
                }
            }
        }
    };
    Router::new().route("/api/{*rest}", axum::routing::any(handler))
}

fn version_error(version: Version, trace: &str, why: &str) -> Response {
    Envelope::new(version, trace).error(
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

/// The version's headers on an answer (the envelope is already the version's own).
fn stamped(mut resp: Response, version: Version, uri: &OriginalUri) -> Response {
    let under = uri.path().strip_prefix(version.prefix()).or_else(|| uri.path().strip_prefix("/api")).unwrap_or("");
    let under = match uri.query() {
        Some(q) => format!("{under}?{q}"),
        None => under.to_string(),
    };
    versions::stamp(resp.headers_mut(), version, &under);
    resp
}

/// The seeds' 429 body (seed 001 §10.3) with the limit that refused.
fn limited(env: &Envelope, d: &Decision, e: &Error, now_ms: i64) -> Response {
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
    let resp = env.limited_by(d, now_ms).error(
        StatusCode::TOO_MANY_REQUESTS,
        e.code().rest_type(),
        &e.public_message(),
        Some(details),
    );
    with_limit_headers(resp, d, now_ms)
}

fn bind_error(env: &Envelope, e: &typed::BindError) -> Response {
    env.error(
        StatusCode::UNPROCESSABLE_ENTITY,
        Code::BadUserInput.rest_type(),
        &format!("{}: {}", e.field, e.message),
        Some(json!({ "field": e.field, "location": e.location })),
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

fn from_error(env: &Envelope, route: Option<&Route>, e: &Error) -> Response {
    e.log();
    let code = e.code();
    let details = field_details(route, e.field(), e.reason());
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = env.error(status, code.rest_type(), &e.public_message(), details);
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
        None => handle_inner(&route, &types, version, req, &mut tag).await,
    };
    let mut resp = stamped(resp, version, &uri);
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
            version,
            &trace,
            &format!("names {} but the path is {}; use one or the other", v.name(), version.prefix()),
        )),
        Err(why) => Some(version_error(version, &trace, &why)),
    }
}

/// Serves a route; once the caller is known, `tag` holds what the metering layer records.
#[allow(clippy::too_many_arguments)]
async fn handle_inner(
    route: &Arc<Route>,
    types: &Arc<Types>,
    version: Version,
    req: Request,
    tag: &mut Option<UsageTag>,
) -> Response {
    let Request { state: State(s), peer: ConnectInfo(peer), path, query: RawQuery(raw), headers, body, .. } = req;
    let query = crate::server::query_params(raw.as_deref());
    let rid = request_id(&headers);
    let trace = rid.0.clone();
    let env = Envelope::new(version, &trace);
    let bytes = match axum::body::to_bytes(body, s.app.config.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            let msg = format!("request body is larger than {} bytes", s.app.config.max_body_bytes);
            return env.error(StatusCode::PAYLOAD_TOO_LARGE, Code::PayloadTooLarge.rest_type(), &msg, None);
        }
    };
    let takes_body = matches!(route.method, Method::POST | Method::PUT | Method::PATCH);
    let body = if !takes_body || bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !ct.to_ascii_lowercase().starts_with("application/json") {
            return env.error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "validation_error",
                "request bodies must be `Content-Type: application/json`",
                None,
            );
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                return env.error(
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
        Err(e) => return from_error(&env, Some(route), &e),
    };
    if matches!(route.shape, Shape::Events) && token.is_none() {
        return from_error(&env, Some(route), &Error::unauthenticated("a credential is required"));
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
                (Stage::Limit, Some(d)) => limited(&env, d, &refused.error, now),
                (_, Some(d)) => {
                    with_limit_headers(from_error(&env.limited_by(d, now), Some(route), &refused.error), d, now)
                }
                (_, None) => from_error(&env, Some(route), &refused.error),
            };
        }
    };
    if let Some(e) = unbound {
        let error: async_graphql::Error = Error::bad_input(e.field.clone(), e.message.clone()).into();
        let mut response = async_graphql::Response::from_errors(vec![error.into_server_error(Default::default())]);
        ticket.settle(&s.app, &mut response, &trace).await;
        *tag = ticket.usage.take();
        let decision = ticket.decision.clone();
        return with_limit_headers(bind_error(&env.limited_by(&decision, now), &e), &decision, now);
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
                with_limit_headers(from_error(&env.limited_by(&decision, now), Some(route), &e), &decision, now)
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
        let resp = env.limited_by(&decision, now).error(status, code.rest_type(), &err.message, details);
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
    // Written straight from the schema's answer; `app.reviews`: a field below the root one.
    let data = route.sig.rest_data(types, &response.data);
    let payload = route.field.split('.').fold(data, |v, f| v.get(f));
    let status = StatusCode::from_u16(route.status).unwrap_or(StatusCode::OK);
    let env = env.limited_by(&decision, now);
    let resp = match route.shape {
        Shape::List => {
            let (nodes, page) = payload.connection();
            env.data(status, &nodes, Some(&page))
        }
        _ => env.data(status, &payload, None),
    };
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

fn with_limit_headers(mut resp: Response, d: &Decision, now_ms: i64) -> Response {
    crate::limits::headers::apply(resp.headers_mut(), d, now_ms);
    resp
}
