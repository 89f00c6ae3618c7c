//! The OpenAPI 3.1 document of the REST routes, written from the route table and the schema's
//! types (see [`super::typed`]): parameters, bodies and responses are the ones each route binds
//! and returns, so the document and the routes cannot disagree. Served at `/api/v1/openapi.json`,
//! `/api/v1/openapi.yaml` and `/api/v1/docs/openapi.json`; the reference UI at `/api/v1/docs`.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::routes::{self, Access, Route, Shape};
use super::schemas::{DocBuilder, input_example, input_schema, response_schema, with_description, with_key};
use super::typed::{Loc, Types};
use super::versions::{VERSIONS, Version};
use crate::server::ServerState;

/// Every `error.type` a REST answer can carry.
pub const ERROR_TYPES: &[(&str, &str)] = &[
    ("validation_error", "The request is malformed or a value is invalid (`details.field`, `details.location`)."),
    ("authentication_error", "No credential, or one that is unknown, revoked or expired."),
    (
        "permission_error",
        "The credential may not do this (a scope, a role, an address, a suspension: `details.reason`).",
    ),
    ("not_found", "No such thing — or it belongs to another organization. Also an unknown route."),
    ("conflict", "The request conflicts with the current state (a duplicate, a wrong status)."),
    (
        "rate_limit_exceeded",
        "A rate window refused the call (`details.limit`, `details.period`, `details.retry_after`).",
    ),
    ("quota_exceeded", "The plan's monthly quota refused the call."),
    ("payload_too_large", "The body is larger than the server accepts."),
    ("method_not_allowed", "The route does not take this method."),
    ("internal_error", "Gantry failed; the request changed nothing. Retry later."),
];

/// Serves the version's document (and the reference page) in its router.
pub fn serve(router: Router<ServerState>, types: &Types, version: Version) -> Router<ServerState> {
    let doc = document_for(types, version);
    let json_text: Arc<str> = Arc::from(serde_json::to_string_pretty(&doc).unwrap_or_default());
    let yaml_text: Arc<str> = Arc::from(serde_norway::to_string(&doc).unwrap_or_default());
    let as_json = move || {
        let body = json_text.clone();
        async move { ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body.to_string()) }
    };
    let as_yaml = move || {
        let body = yaml_text.clone();
        async move {
            ([(header::CONTENT_TYPE, HeaderValue::from_static("application/yaml"))], body.to_string()).into_response()
        }
    };
    router
        .route("/openapi.json", get(as_json.clone()))
        .route("/docs/openapi.json", get(as_json))
        .route("/openapi.yaml", get(as_yaml))
        .route("/docs", get(crate::server::playground::docs))
}

fn operation_id(route: &Route) -> String {
    let mut id = route.method.as_str().to_lowercase();
    for seg in route.path.split('/').filter(|s| !s.is_empty()) {
        let seg = seg.trim_start_matches('{').trim_end_matches('}');
        id.push('_');
        id.push_str(&seg.replace('-', "_"));
    }
    id
}

fn error_response(what: &str) -> Value {
    json!({ "description": what, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

/// The error answers routes share (`components/responses`), by status.
const ERROR_RESPONSES: &[(&str, &str, &str)] = &[
    ("400", "BadRequest", "The body is not JSON (`validation_error`)"),
    ("401", "Unauthorized", "No credential, or an unknown, revoked or expired one (`authentication_error`)"),
    ("403", "Forbidden", "The credential may not do this (`permission_error`; `details.reason` when standing)"),
    ("404", "NotFound", "Not found — including another organization's ids (`not_found`)"),
    ("409", "Conflict", "Conflicts with the current state (`conflict`)"),
    ("413", "PayloadTooLarge", "The body is too large (`payload_too_large`)"),
    ("415", "UnsupportedMediaType", "The body is not `application/json` (`validation_error`)"),
    ("422", "Unprocessable", "An invalid value (`validation_error`; `details.field` and `details.location` name it)"),
    (
        "429",
        "TooManyRequests",
        "A rate window or the monthly quota refused the call (`rate_limit_exceeded`, `quota_exceeded`)",
    ),
    ("default", "Failure", "Any other failure (`internal_error`): nothing was changed"),
];

fn error_ref(status: &str) -> Value {
    let name = ERROR_RESPONSES.iter().find(|(s, _, _)| *s == status).map(|(_, n, _)| *n).unwrap_or("Failure");
    json!({ "$ref": format!("#/components/responses/{name}") })
}

const RATE_LIMIT_HEADERS: &[(&str, &str, &str)] = &[
    ("X-RateLimit-Limit", "integer", "Requests allowed in the binding window"),
    ("X-RateLimit-Remaining", "integer", "Requests left in it"),
    ("X-RateLimit-Reset", "integer", "Unix time (seconds) at which it resets"),
    ("RateLimit-Policy", "string", "The windows and quota that apply (IETF RateLimit headers)"),
    ("RateLimit", "string", "The binding limit now (IETF RateLimit headers)"),
];

fn rate_limit_headers() -> Value {
    let mut m = Map::new();
    for (name, _, _) in RATE_LIMIT_HEADERS {
        m.insert(name.to_string(), json!({ "$ref": format!("#/components/headers/{name}") }));
    }
    Value::Object(m)
}

fn components_responses_and_headers() -> (Value, Value) {
    let mut responses = Map::new();
    for (status, name, what) in ERROR_RESPONSES {
        let mut r = error_response(what);
        if *status == "429" {
            let mut h = rate_limit_headers();
            h["Retry-After"] = json!({ "$ref": "#/components/headers/Retry-After" });
            r["headers"] = h;
        }
        responses.insert(name.to_string(), r);
    }
    let mut headers = Map::new();
    for (name, ty, what) in RATE_LIMIT_HEADERS {
        headers.insert(name.to_string(), json!({ "description": what, "schema": { "type": ty } }));
    }
    headers.insert("Retry-After".into(), json!({ "description": "Seconds to wait", "schema": { "type": "integer" } }));
    (Value::Object(responses), Value::Object(headers))
}

/// The data schema of a route: the selected field, or the nodes of a connection.
fn data_schema(route: &Route, types: &Types, b: &mut DocBuilder) -> Value {
    let schema = response_schema(&route.sig, types, route.field, b);
    match route.shape {
        Shape::List => {
            let connection = b.deref(&schema);
            let edge = b.deref(&b.deref(&connection["properties"]["edges"])["items"]);
            json!({ "type": "array", "items": edge["properties"]["node"] })
        }
        _ => schema,
    }
}

fn operation(route: &Route, types: &Types, b: &mut DocBuilder, version: Version) -> Value {
    let mut parameters = Vec::new();
    for p in route.sig.params.iter().filter(|p| p.loc != Loc::Body) {
        let ty = if p.loc == Loc::Path { p.ty.non_null() } else { p.ty.clone() };
        let mut schema = input_schema(types, &ty, b);
        if let Some(d) = &p.default {
            schema = with_key(schema, "default", d.clone());
        }
        if p.rest == "limit" {
            schema = json!({ "type": "integer", "minimum": 1, "maximum": 100, "description": "Items per page (default 20)" });
        }
        let mut param = json!({ "name": p.rest, "in": p.loc.as_str(), "required": p.loc == Loc::Path || p.required(), "schema": schema });
        if matches!(p.ty, super::typed::Ty::List { .. }) {
            param["style"] = json!("form");
            param["explode"] = json!(false);
        }
        if p.rest == "cursor" {
            param["description"] = json!("The `next_cursor` of the previous page");
        }
        parameters.push(param);
    }
    let mut op = json!({
        "operationId": operation_id(route),
        "summary": route.summary,
        "tags": [route.path.split('/').nth(1).unwrap_or("api")],
        "x-graphql-operation": route.document,
    });
    if !parameters.is_empty() {
        op["parameters"] = json!(parameters);
    }
    if let Some(p) = &route.sig.whole_body {
        let schema = input_schema(types, &p.ty, b);
        let name = p.ty.named();
        let required = matches!(types.defs.get(name), Some(super::typed::Def::Input(fields))
            if fields.iter().any(|f| !f.ty.nullable() && f.default.is_none()));
        let example = input_example(types, &p.ty, &p.var);
        op["requestBody"] = json!({ "required": required, "content": { "application/json": { "schema": schema, "example": example } } });
    } else if route.sig.params.iter().any(|p| p.loc == Loc::Body) {
        let mut props = Map::new();
        let mut required = Vec::new();
        let mut example = Map::new();
        for p in route.sig.params.iter().filter(|p| p.loc == Loc::Body) {
            if p.required() {
                example.insert(p.rest.clone(), input_example(types, &p.ty, &p.var));
            }
            let mut s = input_schema(types, &p.ty, b);
            if let Some(d) = &p.default {
                s = with_key(s, "default", d.clone());
            }
            if p.required() {
                required.push(p.rest.clone());
            }
            props.insert(p.rest.clone(), s);
        }
        // With nothing required, the example shows the first field.
        if example.is_empty()
            && let Some(p) = route.sig.params.iter().find(|p| p.loc == Loc::Body)
        {
            example.insert(p.rest.clone(), input_example(types, &p.ty, &p.var));
        }
        let mut schema = json!({ "type": "object", "properties": props, "additionalProperties": false });
        if !required.is_empty() {
            schema["required"] = json!(required);
        }
        op["requestBody"] = json!({ "required": !required.is_empty(), "content": { "application/json": { "schema": schema, "example": example } } });
    }
    let mut responses = Map::new();
    let limited = route.access != Access::Open;
    let success = if route.status == 204 {
        json!({ "description": "Done (no body)" })
    } else if matches!(route.shape, Shape::Events) {
        json!({ "description": "Server-Sent Events: one `event` per item, its JSON in `data`", "content": { "text/event-stream": { "schema": { "type": "string" } } } })
    } else if matches!(route.shape, Shape::Html(_)) {
        json!({ "description": "A printable page", "content": { "text/html": { "schema": { "type": "string" } } } })
    } else {
        let data = data_schema(route, types, b);
        let schema = if version == Version::V1 {
            let meta = if matches!(route.shape, Shape::List) { "ListMeta" } else { "Meta" };
            json!({
                "type": "object",
                "required": ["id", "status", "code", "data", "meta"],
                "properties": {
                    "id": { "type": "string", "description": "The request's id (`req_…`)" },
                    "status": { "const": "success" },
                    "code": { "const": route.status },
                    "data": data,
                    "meta": { "$ref": format!("#/components/schemas/{meta}") },
                },
            })
        } else if matches!(route.shape, Shape::List) {
            json!({
                "type": "object",
                "required": ["id", "data", "has_more", "total_count"],
                "properties": {
                    "id": { "type": "string", "description": "The request's id (`req_…`)" },
                    "data": data,
                    "has_more": { "type": "boolean" },
                    "total_count": { "type": "integer" },
                    "next_cursor": { "type": "string", "description": "Present when `has_more`: pass it as `cursor`" },
                },
            })
        } else {
            json!({
                "type": "object",
                "required": ["id", "data"],
                "properties": { "id": { "type": "string", "description": "The request's id (`req_…`)" }, "data": data },
            })
        };
        json!({ "description": "Success", "content": { "application/json": { "schema": schema } } })
    };
    let mut success = success;
    let mut headers = if limited { rate_limit_headers() } else { json!({}) };
    headers["X-API-Version"] = json!({ "$ref": "#/components/headers/X-API-Version" });
    if version.info().deprecated.is_some() {
        for h in ["Deprecation", "Sunset", "Link"] {
            headers[h] = json!({ "$ref": format!("#/components/headers/{h}") });
        }
    }
    success["headers"] = headers;
    responses.insert(route.status.to_string(), success);
    let has_body = route.sig.has_body();
    let mutation = route.document.trim_start().starts_with("mutation");
    let mut errors = vec!["401"];
    if has_body {
        errors.extend(["400", "413", "415"]);
    }
    if route.access != Access::Open {
        errors.push("403");
    }
    if route.sig.params.iter().any(|p| p.loc == Loc::Path) || mutation {
        errors.push("404");
    }
    if mutation {
        errors.push("409");
    }
    errors.extend(["422", "429", "default"]);
    for status in errors {
        responses.insert(status.into(), error_ref(status));
    }
    op["responses"] = Value::Object(responses);
    op["security"] = match route.access {
        Access::Credential => json!([{ "bearer": [] }]),
        Access::Optional => json!([{}, { "bearer": [] }]),
        Access::Open => json!([]),
    };
    op
}

/// The v1 document, from the route table and the schema's types.
pub fn document(types: &Types) -> Value {
    document_for(types, Version::V1)
}

/// The `POST /api/v2/integrations/batch` entry (not a GraphQL row).
fn batch_operation() -> Value {
    json!({
        "operationId": "post_integrations_batch",
        "summary": "Up to 50 REST calls in one request, each authenticated, limited and metered on its own, answered in order",
        "tags": ["integrations"],
        "requestBody": { "required": true, "content": { "application/json": { "schema": {
            "type": "object", "additionalProperties": false, "required": ["requests"],
            "properties": { "requests": { "type": "array", "minItems": 1, "maxItems": super::batch::MAX_REQUESTS, "items": {
                "type": "object", "additionalProperties": false, "required": ["method", "path"],
                "properties": {
                    "method": { "type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"] },
                    "path": { "type": "string", "description": "Under /api/v2 (`/keys?limit=5`), or a full /api/v1/… path" },
                    "body": { "description": "The sub-request's JSON body" },
                },
            } } },
        } } } },
        "responses": {
            "200": { "description": "One answer per sub-request, in order", "content": { "application/json": { "schema": {
                "type": "object", "required": ["id", "data"],
                "properties": { "id": { "type": "string" }, "data": { "type": "array", "items": {
                    "type": "object", "required": ["status", "body"],
                    "properties": { "status": { "type": "integer" }, "body": {}, "api_version": { "type": "string" } },
                } } },
            } } } },
            "400": error_ref("400"), "413": error_ref("413"), "422": error_ref("422"), "default": error_ref("default"),
        },
        "security": [{ "bearer": [] }],
    })
}

/// A version's document, from its route table and the schema's types.
pub fn document_for(types: &Types, version: Version) -> Value {
    let mut b = DocBuilder::default();
    let mut paths = Map::new();
    let mut rows = routes::table();
    if version == Version::V2 {
        rows.extend(routes::v2_only());
    }
    for route in rows {
        let op = operation(&route, types, &mut b, version);
        let entry = paths.entry(format!("{}{}", version.prefix(), route.path)).or_insert_with(|| json!({}));
        entry[route.method.as_str().to_lowercase()] = op;
    }
    if version == Version::V2 {
        paths.insert("/api/v2/integrations/batch".into(), json!({ "post": batch_operation() }));
    }
    b.keep_reachable(&Value::Object(paths.clone()));
    let mut schemas: Map<String, Value> = b.components.into_iter().collect();
    let rate_limit = json!({ "type": "object", "required": ["limit", "remaining", "reset"], "properties": {
        "limit": { "type": "integer", "description": "Requests allowed in the binding window" },
        "remaining": { "type": "integer" },
        "reset": { "type": "integer", "description": "Unix time (seconds)" },
    } });
    let meta_props = json!({
        "timestamp": { "type": "string", "format": "date-time" },
        "trace_id": { "type": "string", "description": "The request id (also the `X-Request-Id` header)" },
        "rate_limit": { "anyOf": [{ "$ref": "#/components/schemas/RateLimit" }, { "type": "null" }] },
    });
    let mut list_props = meta_props.clone();
    list_props["pagination"] = json!({ "type": "object", "required": ["total_count", "has_more"], "properties": {
        "total_count": { "type": "integer" },
        "has_more": { "type": "boolean" },
        "next_cursor": { "type": "string", "description": "Present when `has_more`: pass it as `cursor`" },
    } });
    schemas.insert("RateLimit".into(), rate_limit);
    schemas.insert(
        "Meta".into(),
        json!({ "type": "object", "required": ["timestamp", "trace_id", "rate_limit"], "properties": meta_props }),
    );
    schemas.insert(
        "ListMeta".into(),
        json!({ "type": "object", "required": ["timestamp", "trace_id", "rate_limit", "pagination"], "properties": list_props }),
    );
    let kinds: Vec<&str> = ERROR_TYPES.iter().map(|(k, _)| *k).collect();
    let kinds_doc: String = ERROR_TYPES.iter().map(|(k, d)| format!("- `{k}`: {d}\n")).collect();
    let error_body = json!({ "type": "object", "required": ["type", "message", "details"], "properties": {
                "type": with_description(json!({ "type": "string", "enum": kinds }), &kinds_doc),
                "message": { "type": "string" },
                "details": { "type": "object", "properties": {
                    "field": { "type": "string", "description": "The REST field (snake_case; dotted inside a body)" },
                    "location": { "type": "string", "enum": ["path", "query", "body", "header"] },
                    "reason": { "type": "string", "description": "A standing reason: USER_SUSPENDED, ORGANIZATION_SUSPENDED, ORGANIZATION_DELETED" },
                    "limit": { "type": "integer" },
                    "period": { "type": "string" },
                    "retry_after": { "type": "integer" },
                } },
            } });
    if version == Version::V2 {
        schemas.insert(
            "Error".into(),
            json!({ "type": "object", "required": ["id", "error"], "properties": { "id": { "type": "string" }, "error": error_body } }),
        );
        schemas.remove("Meta");
        schemas.remove("ListMeta");
        schemas.remove("RateLimit");
    } else {
        schemas.insert(
            "Error".into(),
            json!({ "type": "object", "required": ["id", "status", "code", "error", "meta"], "properties": {
                "id": { "type": "string" },
                "status": { "const": "error" },
                "code": { "type": "integer", "description": "The HTTP status" },
                "error": error_body,
                "meta": { "$ref": "#/components/schemas/Meta" },
            } }),
        );
    }
    let (responses, mut headers) = components_responses_and_headers();
    let info = version.info();
    headers["X-API-Version"] = json!({ "description": "The version that served the call", "schema": { "type": "string", "const": info.name } });
    if let (Some(dep), Some(sunset), Some(next)) = (info.deprecated, info.sunset, info.successor) {
        headers["Deprecation"] = json!({ "description": format!("RFC 9745: deprecated since {dep} (`@<epoch seconds>`)"), "schema": { "type": "string" } });
        headers["Sunset"] =
            json!({ "description": format!("RFC 8594: announced end {sunset}"), "schema": { "type": "string" } });
        headers["Link"] = json!({ "description": format!("The same route in {} (`rel=\"successor-version\"`)", next.name()), "schema": { "type": "string" } });
    }
    let versions: Vec<Value> = VERSIONS
        .iter()
        .map(|v| json!({ "version": v.name, "released": v.released, "deprecated": v.deprecated, "sunset": v.sunset }))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("Gantry REST API {}", info.name),
            "x-api-versions": versions,
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "Every route executes a GraphQL operation (`x-graphql-operation`) on the same schema as `/graphql`: the same authorization, validation, rate limits and metering. Field names are snake_case; enum values are spelled as in GraphQL (upper case; any case is accepted). Errors are envelopes whose `error.type` is one of:\n\n{kinds_doc}"
            ),
        },
        "servers": [{ "url": "/" }],
        "paths": paths,
        "components": {
            "responses": responses,
            "headers": headers,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "An API key (`gk_live_…`, `gk_test_…`), a session token (`gks_…`) or an OAuth access token" } },
            "schemas": schemas,
        },
    })
}

#[cfg(test)]
mod tests {
    /// The document is a contract: a change to a route, a type or a description shows here
    /// (`cargo insta review`, or `INSTA_UPDATE=always cargo test --lib openapi`).
    #[test]
    fn the_document_is_the_contract() {
        let types = super::Types::from_sdl(&crate::graphql::sdl());
        let doc = super::document(&types);
        insta::assert_json_snapshot!("openapi", doc);
    }

    /// Every request body example of both documents binds to its route: it is what the route takes.
    #[test]
    fn every_example_binds_to_its_route() {
        use super::super::versions::Version;
        let types = super::Types::from_sdl(&crate::graphql::sdl());
        let mut checked = 0;
        for version in [Version::V1, Version::V2] {
            let doc = super::document_for(&types, version);
            let mut rows = super::routes::table();
            if version == Version::V2 {
                rows.extend(super::routes::v2_only());
            }
            for route in rows {
                let path = format!("{}{}", version.prefix(), route.path);
                let op = &doc["paths"][&path][route.method.as_str().to_ascii_lowercase()];
                let Some(example) = op["requestBody"]["content"]["application/json"].get("example") else {
                    assert!(!route.sig.has_body(), "{path}: a body without an example");
                    continue;
                };
                let params = route.path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'));
                let path_values = params.map(|p| (p.to_string(), "x".to_string())).collect();
                match route.sig.bind(&types, &path_values, &Default::default(), Some(example.clone())) {
                    Err(e) if e.location == "body" => panic!("{path}: the example {example} does not bind: {e:?}"),
                    _ => checked += 1,
                }
            }
        }
        assert!(checked > 60, "only {checked} examples checked");
    }
}
