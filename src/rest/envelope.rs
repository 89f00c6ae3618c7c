//! The envelopes REST answers are written in, each version its own, serialized straight to bytes.
//!
//! - v1 (seed 000): `{id, status: "success", code, data, meta: {timestamp, rate_limit, trace_id,
//!   pagination?}}`; errors `{id, status: "error", code, error: {type, message, details}, meta}`.
//! - v2 (seed 001 §4.4): no `meta` wrapper — `{id, data}`, lists with `has_more`, `total_count`
//!   and `next_cursor`; errors `{id, error}`.
//!
//! `next_cursor` is there only when there is a next page.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::versions::Version;
use crate::limits::limiter::Decision;

/// A list's place: how many there are, whether more follow, and where they start.
#[derive(Serialize)]
pub struct Page {
    pub total_count: Value,
    pub has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<Value>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
    details: &'a Value,
}

#[derive(Serialize)]
struct Meta<'a> {
    timestamp: String,
    rate_limit: &'a Value,
    trace_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pagination: Option<&'a Page>,
}

#[derive(Serialize)]
struct V1<'a, D: Serialize + ?Sized> {
    id: String,
    status: &'static str,
    code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a D>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody<'a>>,
    meta: Meta<'a>,
}

#[derive(Serialize)]
struct V2<'a, D: Serialize + ?Sized> {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a D>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    has_more: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_count: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<&'a Value>,
}

/// The envelope id: the request id without dashes.
pub fn envelope_id(trace_id: &str) -> String {
    let mut id = String::with_capacity(4 + trace_id.len());
    id.push_str("req_");
    id.extend(trace_id.chars().filter(|c| *c != '-'));
    id
}

/// How one answer is enveloped: the version, the request id, and the rate limit that applied
/// (`meta.rate_limit` in v1; null before a limit applied).
pub struct Envelope<'a> {
    pub version: Version,
    trace: &'a str,
    rate_limit: Value,
}

impl<'a> Envelope<'a> {
    pub fn new(version: Version, trace: &'a str) -> Self {
        Envelope { version, trace, rate_limit: Value::Null }
    }

    /// The same envelope, carrying the decision's limit.
    pub fn limited_by(&self, d: &Decision, now_ms: i64) -> Envelope<'a> {
        Envelope { version: self.version, trace: self.trace, rate_limit: crate::limits::headers::envelope(d, now_ms) }
    }

    /// A success answer; `page` for a list.
    pub fn data<D: Serialize + ?Sized>(&self, status: StatusCode, data: &D, page: Option<&Page>) -> Response {
        self.write(status, Some(data), None, page)
    }

    /// An error answer; `details` is `{}` when there are none.
    pub fn error(&self, status: StatusCode, kind: &str, message: &str, details: Option<Value>) -> Response {
        let details = details.unwrap_or_else(|| Value::Object(Default::default()));
        self.write::<Value>(status, None, Some(ErrorBody { kind, message, details: &details }), None)
    }

    fn write<D: Serialize + ?Sized>(
        &self,
        status: StatusCode,
        data: Option<&D>,
        error: Option<ErrorBody>,
        page: Option<&Page>,
    ) -> Response {
        let id = envelope_id(self.trace);
        let is_error = error.is_some();
        let mut bytes = Vec::with_capacity(1024);
        let written = match self.version {
            Version::V1 => {
                let meta = Meta {
                    timestamp: crate::platform::clock::rfc3339(chrono::Utc::now().timestamp_millis()),
                    rate_limit: &self.rate_limit,
                    trace_id: self.trace,
                    pagination: page,
                };
                let status_word = if error.is_some() { "error" } else { "success" };
                serde_json::to_writer(
                    &mut bytes,
                    &V1 { id, status: status_word, code: status.as_u16(), data, error, meta },
                )
            }
            Version::V2 => serde_json::to_writer(
                &mut bytes,
                &V2 {
                    id,
                    data,
                    error,
                    has_more: page.map(|p| p.has_more),
                    total_count: page.map(|p| &p.total_count),
                    next_cursor: page.and_then(|p| p.next_cursor.as_ref()),
                },
            ),
        };
        match written {
            Ok(()) => {}
            // Never half an envelope, never a success status for an answer that was not written.
            Err(e) if !is_error => {
                tracing::error!(request_id = %self.trace, error = %e, "a REST answer could not be serialized");
                return self.error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the answer could not be written; the request id is in the server's log",
                    None,
                );
            }
            // An error envelope holds only strings and JSON values: it always serializes.
            Err(_) => bytes = b"{}".to_vec(),
        }
        (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(resp: Response) -> Value {
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Data that fails to serialize (a map with non-string keys) answers a 500 error envelope.
    #[tokio::test]
    async fn an_answer_that_cannot_be_written_is_a_500_error_envelope() {
        let bad: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into_iter().collect();
        for version in [Version::V1, Version::V2] {
            let resp = Envelope::new(version, "a-b").data(StatusCode::OK, &bad, None);
            assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let v = body(resp).await;
            assert_eq!(v["error"]["type"], "internal_error", "{v}");
            assert_eq!(v["id"], "req_ab");
            assert!(v.get("data").is_none(), "{v}");
        }
    }

    #[tokio::test]
    async fn each_version_writes_its_own_envelope() {
        let page = Page { total_count: Value::from(3), has_more: true, next_cursor: Some(Value::from("c2")) };
        let data = serde_json::json!([{ "id": "k1" }]);
        let v1 = body(Envelope::new(Version::V1, "a-b").data(StatusCode::OK, &data, Some(&page))).await;
        assert_eq!(v1["id"], "req_ab");
        assert_eq!(v1["status"], "success");
        assert_eq!(v1["code"], 200);
        assert_eq!(v1["data"], data);
        assert_eq!(v1["meta"]["trace_id"], "a-b");
        assert_eq!(
            v1["meta"]["pagination"],
            serde_json::json!({ "total_count": 3, "has_more": true, "next_cursor": "c2" })
        );
        let v2 = body(Envelope::new(Version::V2, "a-b").data(StatusCode::OK, &data, Some(&page))).await;
        assert_eq!(
            v2,
            serde_json::json!({ "id": "req_ab", "data": data, "has_more": true, "total_count": 3, "next_cursor": "c2" })
        );

        let last = Page { total_count: Value::from(3), has_more: false, next_cursor: None };
        let v2 = body(Envelope::new(Version::V2, "x").data(StatusCode::OK, &data, Some(&last))).await;
        assert!(v2.get("next_cursor").is_none(), "{v2}");
        let v1 = body(Envelope::new(Version::V1, "x").data(StatusCode::OK, &data, Some(&last))).await;
        assert!(v1["meta"]["pagination"].get("next_cursor").is_none(), "{v1}");
    }

    #[tokio::test]
    async fn errors_carry_the_id_and_details() {
        let e = Envelope::new(Version::V1, "t").error(StatusCode::NOT_FOUND, "not_found", "gone", None);
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        let v1 = body(e).await;
        assert_eq!(v1["status"], "error");
        assert_eq!(v1["error"], serde_json::json!({ "type": "not_found", "message": "gone", "details": {} }));
        assert!(v1["meta"]["rate_limit"].is_null());
        let details = Some(serde_json::json!({ "field": "limit", "location": "query" }));
        let v2 = body(Envelope::new(Version::V2, "t").error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            "no",
            details,
        ))
        .await;
        assert_eq!(
            v2,
            serde_json::json!({ "id": "req_t", "error": { "type": "validation_error", "message": "no", "details": { "field": "limit", "location": "query" } } })
        );
    }
}
