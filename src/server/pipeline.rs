//! The admission pipeline: every GraphQL operation passes [`admit`], whatever the surface —
//! GraphQL over HTTP, REST (each route is a GraphQL operation), and every query, mutation and
//! subscription start over WebSocket. In order:
//!
//! 1. the credential becomes a principal (`auth::authenticate`; no credential = anonymous);
//! 2. the document comes from the cache (parsed once), with what its operation is;
//! 3. the operation's units (per-operation costs, or the REST route's);
//! 4. the screen: NUL in any text, and the query cost of every operation of the document against
//!    the plan's maximum;
//! 5. one limiter decision for the request windows, the monthly quota, the concurrency cap and
//!    the query-cost points — all or nothing — and the alert triggers it raises;
//! 6. the usage tag the call is metered by;
//! 7. the request data resolvers read (principal, address, decision, loaders).
//!
//! A refused operation ([`Refused`]) says at which stage; each surface only formats it its own
//! way. A request the screen refuses still costs a request (it was made), never points. After
//! execution, [`Ticket::settle`] gives back the points of an operation that never ran (a parse or
//! validation error), gives every error a code and a bounded message, keeps the requested order of
//! the root fields and completes the usage tag.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_graphql::parser::types::OperationType;

use super::Schemas;
use crate::app::App;
use crate::auth::Bearer;
use crate::error::{Code, Error};
use crate::graphql::context::ClientIp;
use crate::graphql::documents::OperationInfo;
use crate::graphql::loaders::loaders;
use crate::limits::limiter::{Decision, Permit, Subject};
use crate::limits::query_cost::Throttle;
use crate::usage::meter::{Source, UsageTag};

/// How an operation arrives.
pub struct Entrance<'a> {
    /// The surface, as metered.
    pub source: Source,
    /// The credential presented, if any.
    pub bearer: Option<Bearer<'a>>,
    pub ip: ClientIp,
    /// A REST route's label (`GET /api/v1/keys/{id}`): metered as the operation, and costed by its
    /// own per-operation cost when it has one.
    pub route: Option<&'a Arc<str>>,
}

/// The stage that refused an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The credential: unknown, revoked, expired (401) or forbidden (403). Nothing is charged and
    /// nothing is metered (there is nobody to charge).
    Credential,
    /// The request itself: NUL in its text, or too costly. Charged a request, metered, answered
    /// like a validation error.
    Request,
    /// A rate window, the monthly quota or the concurrency cap (429).
    Limit,
    /// Gantry could not decide (the database is unreachable, say).
    Internal,
}

/// An operation that was not admitted.
pub struct Refused {
    pub stage: Stage,
    pub error: Error,
    /// The limiter's decision, when it was made (the rate-limit headers show it).
    pub decision: Option<Arc<Decision>>,
    /// What the refused call is metered as, when the caller is known.
    pub usage: Option<UsageTag>,
}

impl Refused {
    fn new(stage: Stage, error: Error) -> Self {
        Self { stage, error, decision: None, usage: None }
    }
}

/// An admitted operation: the request, ready to execute, and its ticket.
pub struct Admitted {
    pub request: async_graphql::Request,
    pub ticket: Ticket,
}

/// What an admitted operation carries through execution.
pub struct Ticket {
    pub operation: OperationInfo,
    pub decision: Arc<Decision>,
    pub usage: Option<UsageTag>,
    /// Query-cost points charged.
    pub points: u64,
    /// Whether the points were given back (the operation never ran).
    refunded: bool,
    subject: Subject,
    /// The concurrency slot, held until the ticket drops (or [`Ticket::end_request`]).
    permit: Option<Permit>,
}

/// Admits one operation: every check a request must pass before it runs (see the module doc).
pub async fn admit(
    app: &Arc<App>,
    entrance: Entrance<'_>,
    request: async_graphql::Request,
) -> Result<Admitted, Refused> {
    if entrance.bearer.is_some()
        && let Some(refused) = blocked(app, entrance.ip)
    {
        return Err(refused);
    }
    let principal = match &entrance.bearer {
        Some(bearer) => match Box::pin(crate::auth::authenticate(app, bearer)).await {
            Ok(p) => Some(p),
            Err(e) if e.code() == Code::Internal => return Err(Refused::new(Stage::Internal, e)),
            Err(e) => {
                if e.code() == Code::Unauthenticated
                    && let Some(refused) = charge_failed_credential(app, entrance.ip).await
                {
                    return Err(refused);
                }
                return Err(Refused::new(Stage::Credential, e));
            }
        },
        None => None,
    };
    let (mut request, operation) = app.documents.prepare(request);
    // A platform administrator acting in an organization they are not a member of is audited there.
    if let Some(p) = &principal
        && p.is_platform_admin()
        && p.role.is_none()
    {
        let what = entrance.route.map_or_else(|| operation.label.to_string(), |r| r.to_string());
        if let Err(e) = crate::admin::service::record_access(app, p, &p.org_id, &what, entrance.source.as_str()).await {
            return Err(Refused::new(Stage::Internal, e));
        }
    }
    let units = app.operation_costs.units(&operation.roots, entrance.route.map(|r| &**r));
    let mut usage = principal.as_ref().map(|p| UsageTag {
        org_id: p.org_id.clone(),
        api_key_id: p.key_id().cloned(),
        app_id: p.app_id().cloned(),
        source: entrance.source,
        operation: entrance.route.cloned().unwrap_or_else(|| operation.label.clone()),
        cost_units: 0,
        quota_units: 0,
        status: None,
    });
    let screened = match crate::graphql::refuse_nul(&request) {
        Ok(()) => crate::limits::query_cost::measure(app, principal.as_ref(), &mut request).await,
        Err(e) => Err(e),
    };
    let (points, screen_error) = match screened {
        Ok(points) => (points, None),
        Err(e) if e.code() == Code::Internal => return Err(Refused::new(Stage::Internal, e)),
        Err(e) => (0, Some(e)),
    };
    let (subject, policy) = match crate::limits::service::resolve(app, principal.as_ref(), entrance.ip.0).await {
        Ok(resolved) => resolved,
        Err(e) => return Err(Refused::new(Stage::Internal, e)),
    };
    // Billing management is admitted past the quota, and neither counted in it nor billed.
    let outside_quota = crate::billing::outside_quota(&operation.roots);
    let policy =
        if outside_quota && policy.monthly_quota.is_some() { Arc::new(policy.without_quota()) } else { policy };
    let now = app.clock.now_ms();
    let (decision, permit) = Box::pin(app.limiter.acquire(&subject, policy, units, points, now)).await;
    record_decision(app, &decision);
    if let Some(p) = &principal {
        crate::alerts::observe(app, &p.org_id, p.key_id(), &decision, units, now);
    }
    let decision = Arc::new(decision);
    if let Some(error) = decision.refusal_error() {
        if let Some(t) = &mut usage {
            t.status = Some(error.code().http_status());
        }
        return Err(Refused { stage: Stage::Limit, error, decision: Some(decision), usage });
    }
    if let Some(t) = &mut usage {
        t.cost_units = points;
        t.quota_units = if outside_quota { 0 } else { units };
    }
    if let Some(error) = screen_error {
        if let Some(t) = &mut usage {
            t.status = Some(error.code().http_status());
        }
        return Err(Refused { stage: Stage::Request, error, decision: Some(decision), usage });
    }
    // Inserted in place: `Request::data` takes and returns the (large) request by value.
    request.data.insert(loaders(app.clone()));
    request.data.insert(entrance.ip);
    request.data.insert(decision.clone());
    if let Some(p) = principal {
        request.data.insert(p);
    }
    Ok(Admitted { request, ticket: Ticket { operation, decision, usage, points, refunded: false, subject, permit } })
}

/// Counts a limiter decision by outcome and backend (`gantry_limiter_decisions_total`).
pub fn record_decision(app: &App, decision: &Decision) {
    use crate::limits::limiter::Refusal;
    let outcome = match decision.refusal {
        None => "allowed",
        Some(Refusal::Rate(_)) => "rate_limited",
        Some(Refusal::Quota) => "quota_exceeded",
        Some(Refusal::Concurrency) => "concurrency",
    };
    let backend = app.limiter.backend_label();
    app.metrics.record(|| {
        metrics::counter!("gantry_limiter_decisions_total", "outcome" => outcome, "backend" => backend).increment(1)
    });
}

/// Charges a refused credential (unknown, revoked, expired) to the caller's address: past
/// [`Policy::failed_credentials`](crate::limits::policy::Policy::failed_credentials) the answer
/// is 429 instead of 401, so keys cannot be guessed at line rate. A valid credential is never
/// charged here.
pub async fn charge_failed_credential(app: &App, ip: ClientIp) -> Option<Refused> {
    let who = crate::limits::blocked::address_key(ip.0);
    let subject = Subject { rate: format!("authfail:{who}"), org: format!("authfail:{who}") };
    let now = app.clock.now_ms();
    let (decision, _) = app.limiter.acquire(&subject, app.plans.failed_credentials.clone(), 1, 0, now).await;
    record_decision(app, &decision);
    let error = decision.refusal_error()?;
    tracing::info!(address = %who, "too many failed credentials: the address is blocked until its window refills");
    app.blocked.block(who, now + decision.retry_after_ms.max(1000));
    Some(Refused { stage: Stage::Limit, error, decision: Some(Arc::new(decision)), usage: None })
}

/// A request carrying a credential from an address blocked for failed credentials: refused before
/// the credential is looked at, so a correct guess answers the same as a wrong one.
pub fn blocked(app: &App, ip: ClientIp) -> Option<Refused> {
    let who = crate::limits::blocked::address_key(ip.0);
    let wait_ms = app.blocked.blocked_for(&who, app.clock.now_ms())?;
    let secs = ((wait_ms + 999) / 1000).max(1);
    let error = Error::Limited {
        code: Code::RateLimited,
        message: format!("too many failed credentials from your address; retry in {secs} s"),
        retry_after_secs: secs,
        window: Some("failed_credentials".into()),
    };
    Some(Refused { stage: Stage::Limit, error, decision: None, usage: None })
}

/// Executes a query or mutation admitted by [`admit`]. An operation already known to pass full
/// validation runs on the schema that keeps only the checks whose verdict can differ between runs
/// (fragment cycles, depth, complexity); any other runs through full validation, and marks its
/// operation validated when no request-level error came back.
pub async fn execute(
    schemas: &Schemas,
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

/// Whether a response comes from an operation that ran: it has data, or no errors, or an error of
/// a field (with a path). A parse or validation error has none of these.
pub fn executed(response: &async_graphql::Response) -> bool {
    !matches!(response.data, async_graphql::Value::Null)
        || response.errors.is_empty()
        || response.errors.iter().any(|e| !e.path.is_empty())
}

impl Ticket {
    pub fn is_subscription(&self) -> bool {
        self.operation.kind == OperationType::Subscription
    }

    /// The subject the decision was made for (what a subscription place is counted against).
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// Ends the request's hold on the concurrency cap (a subscription keeps its place among the
    /// subscriptions instead).
    pub fn end_request(&mut self) {
        self.permit = None;
    }

    /// Settles a response: an operation that never ran gets its points back, every error a code
    /// and a bounded message, the root fields the order the selection asked for, and the usage tag
    /// the status of the first error. Returns whether the operation ran.
    pub async fn settle(&mut self, app: &App, response: &mut async_graphql::Response, request_id: &str) -> bool {
        let ran = executed(response);
        if !ran && self.points > 0 && !self.refunded {
            let now = app.clock.now_ms();
            app.limiter.refund_points(&self.subject, &self.decision.policy, self.points, now).await;
            self.refunded = true;
        }
        normalise_errors(&mut response.errors, &app.config, request_id);
        if ran {
            order_root(&mut response.data, &self.operation.response_keys);
        }
        if let (Some(t), Some(first)) = (&mut self.usage, response.errors.first()) {
            t.status = first
                .extensions
                .as_ref()
                .and_then(|e| e.get("code"))
                .and_then(|v| if let async_graphql::Value::String(s) = v { Code::parse(s) } else { None })
                .map(|c| c.http_status());
            if !ran {
                t.cost_units = 0;
            }
        }
        ran
    }

    /// `extensions.cost`: the points requested, charged (none when given back) and left.
    pub fn throttle(&self) -> Option<Throttle> {
        if self.points == 0 {
            return None;
        }
        let mut t = crate::limits::query_cost::throttle_of(&self.decision, self.points)?;
        if self.refunded {
            t.actual = 0;
            t.available = (t.available + self.points).min(t.maximum);
        }
        Some(t)
    }
}

/// A response as sent: without `data` when the operation never ran (GraphQL over HTTP: a request
/// error has no `data` entry at all).
#[derive(serde::Serialize)]
pub struct Wire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a async_graphql::Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [async_graphql::ServerError],
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    extensions: &'a std::collections::BTreeMap<String, async_graphql::Value>,
}

impl<'a> Wire<'a> {
    pub fn of(response: &'a async_graphql::Response, ran: bool) -> Self {
        Wire { data: ran.then_some(&response.data), errors: &response.errors, extensions: &response.extensions }
    }
}

/// Keeps the keys of `data` in the order of the selection: async-graphql resolves the parts of a
/// merged root type one after the other, so `{ viewer … apiKeys … }` would otherwise come back in
/// the order the parts were merged.
fn order_root(data: &mut async_graphql::Value, keys: &[String]) {
    let async_graphql::Value::Object(map) = data else { return };
    if map.len() < 2 {
        return;
    }
    let rank = |k: &async_graphql::Name| keys.iter().position(|x| x.as_str() == k.as_str()).unwrap_or(usize::MAX);
    map.sort_by(|a, _, b, _| rank(a).cmp(&rank(b)));
}

/// The longest error message a client is sent; longer ones are cut.
const MAX_MESSAGE: usize = 500;

/// Every error leaves with a code: parse, validation and coercion errors become `BAD_USER_INPUT`
/// (the limits named in the message); a syntax error says what was expected where (its location)
/// instead of echoing the query; messages are bounded; `INTERNAL` errors also get the request id.
pub fn normalise_errors(errors: &mut [async_graphql::ServerError], config: &crate::config::Config, request_id: &str) {
    crate::graphql::errors::ErrorCodes {
        max_depth: config.graphql_max_depth,
        max_complexity: config.graphql_max_complexity,
    }
    .fix(errors);
    for err in errors {
        if let Some(concise) = concise_syntax_error(&err.message) {
            err.message = concise;
        }
        if err.message.len() > MAX_MESSAGE {
            let mut end = MAX_MESSAGE - 3;
            while !err.message.is_char_boundary(end) {
                end -= 1;
            }
            err.message.truncate(end);
            err.message.push_str("...");
        }
        let ext = err.extensions.get_or_insert_with(Default::default);
        if matches!(ext.get("code"), Some(async_graphql::Value::String(s)) if s == Code::Internal.as_str()) {
            ext.set("requestId", request_id);
        }
    }
}

/// A parser error (` --> 1:3 | <the query> | ^--- = expected …`) as one sentence: what was
/// expected. The location is in the error's `locations`.
fn concise_syntax_error(message: &str) -> Option<String> {
    if !message.trim_start().starts_with("-->") {
        return None;
    }
    let expected = message.lines().rev().find_map(|l| l.trim().strip_prefix("= ")).unwrap_or("unexpected input");
    Some(format!("syntax error: {expected}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syntax_error_says_what_was_expected_without_the_query() {
        let q = format!("{{ viewer {{ id {} }}", "x ".repeat(5000));
        let err = async_graphql::parser::parse_query(&q).unwrap_err();
        let concise = concise_syntax_error(&err.to_string()).expect("a parser error");
        assert!(concise.starts_with("syntax error: expected"), "{concise}");
        assert!(concise.len() < 200, "{concise}");
        assert_eq!(concise_syntax_error("Unknown field \"nope\" on type \"Query\"."), None);
    }

    #[test]
    fn root_fields_keep_the_order_of_the_selection() {
        let mut map = async_graphql::indexmap::IndexMap::new();
        for k in ["apiKeys", "viewer", "plans"] {
            map.insert(async_graphql::Name::new(k), async_graphql::Value::Null);
        }
        let mut data = async_graphql::Value::Object(map);
        order_root(&mut data, &["viewer".to_string(), "plans".to_string(), "apiKeys".to_string()]);
        let async_graphql::Value::Object(map) = data else { unreachable!() };
        assert_eq!(map.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["viewer", "plans", "apiKeys"]);
    }
}
