//! `GET /api/v2/analytics/realtime`: the organization's events as Server-Sent Events. The route is a
//! GraphQL subscription (`events(types:)`) admitted like any call — authenticated, limited,
//! metered once at its start, holding one of the principal's subscription places — and fed by
//! the same bus as the GraphQL subscriptions, on every node. The stream ends when the credential
//! stops working (revoked, suspended), as a WebSocket is closed.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{FutureExt, StreamExt};

use super::routes::Route;
use super::typed::Types;
use crate::auth::Bearer;
use crate::error::{Code, Error};
use crate::server::ServerState;
use crate::server::pipeline::Ticket;
use crate::server::ws::credential_refused;

/// The credential of the stream, owned for as long as it runs.
pub(super) struct Caller {
    pub token: String,
    pub ip: Option<std::net::IpAddr>,
    pub organization: Option<String>,
}

/// Serves an admitted subscription as an event stream; an error before the first event is an
/// ordinary error answer.
pub(super) async fn stream(
    s: &ServerState,
    route: std::sync::Arc<Route>,
    types: std::sync::Arc<Types>,
    mut request: async_graphql::Request,
    ticket: &mut Ticket,
    caller: Caller,
    trace: &str,
) -> Result<Response, Error> {
    let app = s.app.clone();
    let max = ticket.decision.policy.plan.as_ref().and_then(|p| p.max_subscriptions).filter(|m| *m >= 0);
    let place = match max {
        Some(max) => match app.limiter.hold_subscription(ticket.subject(), max as u64, app.clock.clone()).await {
            Some(place) => Some(place),
            None => {
                return Err(Error::Limited {
                    code: Code::RateLimited,
                    message: format!("too many open subscriptions (at most {max} at once): close one first"),
                    retry_after_secs: 1,
                    window: Some("subscriptions".into()),
                });
            }
        },
        None => None,
    };
    ticket.end_request();
    request.data.insert(crate::server::RequestId(trace.to_string()));
    let mut responses = s.schemas.full.execute_stream(request);
    // A request error is the stream's first item, at once; a live subscription waits for events.
    let first = match responses.next().now_or_never() {
        Some(Some(mut response)) => {
            let ran = ticket.settle(&app, &mut response, trace).await;
            if !ran {
                let e = response.errors.first().map(|e| e.message.clone()).unwrap_or_default();
                return Err(Error::bad_input("types", e));
            }
            Some(response)
        }
        _ => None,
    };
    let events = futures_util::stream::iter(first).chain(responses).map(move |response| {
        let _held = &place;
        let payload = route.sig.rest_data(&types, &response.data).get(route.field);
        let mut event = Event::default().event("event");
        if let async_graphql::Value::Object(m) = payload.value()
            && let Some(async_graphql::Value::String(id)) = m.get("id")
        {
            event = event.id(id);
        }
        Ok::<Event, Infallible>(event.data(serde_json::to_string(&payload).unwrap_or_default()))
    });
    let ended = credential_ends(app.clone(), caller);
    let body = Sse::new(events.take_until(ended)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)));
    Ok(body.into_response())
}

/// Resolves when the caller's credential stops working (see [`credential_refused`]).
async fn credential_ends(app: std::sync::Arc<crate::app::App>, caller: Caller) {
    let bearer = Bearer { token: &caller.token, ip: caller.ip, organization: caller.organization.as_deref() };
    credential_refused(&app, &bearer).await;
}
