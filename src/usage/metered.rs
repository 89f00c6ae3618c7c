//! `recordUsage`: metered events the operator's backend reports (emails sent, GB stored, …), each
//! with an idempotency key — a repeat is accepted once and answered with the first event's id.
//!
//! Calls are validated on the request path, then committed in batches by one writer task (group
//! commit): concurrent callers share one transaction and one multi-row insert, and each caller is
//! answered only after its events are durable — an acknowledged event is never lost.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use tokio::sync::{mpsc, oneshot};

use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::platform::db::Db;
use crate::platform::db::schema::{metered_events, organizations};
use crate::platform::ids::{MeterEventId, OrgId};
use crate::{transaction, with_conn};

pub const MAX_EVENTS_PER_CALL: usize = 1000;
/// Rows per insert statement (9 binds a row).
const CHUNK: usize = 500;
const MAX_PROPERTIES_BYTES: usize = 4096;
/// How far back an event may be dated (a late report still lands in an open billing period).
const MAX_AGE_MS: i64 = 35 * 86_400_000;
/// How far ahead (clock skew).
const MAX_SKEW_MS: i64 = 5 * 60_000;

/// One reported event, as the caller sent it.
#[derive(Debug, Clone)]
pub struct EventInput {
    pub metric: String,
    pub quantity: i64,
    pub idempotency_key: String,
    pub timestamp_ms: Option<i64>,
    pub properties: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Duplicate,
}

/// The fate of one event: its id (the first event's, for a repeat) and whether it was new.
#[derive(Debug, Clone)]
pub struct EventResult {
    pub idempotency_key: String,
    pub event_id: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
struct Row {
    id: String,
    org_id: String,
    idempotency_key: String,
    metric: String,
    quantity: i64,
    properties: String,
    occurred_at: i64,
    recorded_at: i64,
    recorded_by: String,
}

struct Job {
    rows: Vec<Row>,
    reply: oneshot::Sender<Result<Vec<EventResult>>>,
}

/// The group-commit writer's inbox.
pub struct Recorder {
    tx: mpsc::Sender<Job>,
}

impl Recorder {
    /// Starts the writer on `db`; it stops when the recorder is dropped.
    pub fn start(db: Db) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(writer(db, rx));
        Self { tx }
    }
}

async fn writer(db: Db, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::new();
    // Everything waiting is one batch: the longer a commit takes, the larger the next batch.
    while rx.recv_many(&mut jobs, 256).await > 0 {
        let batch = std::mem::take(&mut jobs);
        let mut outcome = commit(&db, batch.iter().flat_map(|j| j.rows.iter())).await;
        // Another node stored one of the keys between our read and our insert: read again.
        for _ in 0..2 {
            if !matches!(&outcome, Err(e) if e.code() == crate::error::Code::Conflict) {
                break;
            }
            outcome = commit(&db, batch.iter().flat_map(|j| j.rows.iter())).await;
        }
        match outcome {
            Ok(mut results) => {
                for job in batch {
                    let rest = results.split_off(job.rows.len());
                    let _ = job.reply.send(Ok(std::mem::replace(&mut results, rest)));
                }
            }
            Err(e) => {
                e.log();
                for job in batch {
                    let _ = job.reply.send(Err(Error::internal(anyhow::anyhow!("usage batch not committed"))));
                }
            }
        }
    }
}

/// Inserts new events and finds the first id of repeated ones, in one transaction.
async fn commit(db: &Db, rows: impl Iterator<Item = &Row>) -> Result<Vec<EventResult>> {
    let rows: Vec<&Row> = rows.collect();
    let mut by_org: HashMap<&str, Vec<&str>> = HashMap::new();
    for r in &rows {
        by_org.entry(&r.org_id).or_default().push(&r.idempotency_key);
    }
    // Rows that turn out new are only known inside the transaction; statements for every chunk
    // size are cheap to prepare here.
    let sql_for = |n: usize| {
        let one = format!("({})", ["?"; 9].join(", "));
        db.sql(&format!(
            "INSERT INTO metered_events (id, org_id, idempotency_key, metric, quantity, properties, occurred_at, \
             recorded_at, recorded_by) VALUES {}",
            vec![one; n].join(", ")
        ))
    };
    transaction!(db, c => {
        // Ids already stored for these keys, per organization.
        let mut known: HashMap<(String, String), String> = HashMap::new();
        for (org, keys) in &by_org {
            for chunk in keys.chunks(500) {
                let found: Vec<(String, String)> = metered_events::table
                    .filter(metered_events::org_id.eq(*org))
                    .filter(metered_events::idempotency_key.eq_any(chunk))
                    .select((metered_events::idempotency_key, metered_events::id))
                    .load(c).await?;
                for (k, id) in found {
                    known.insert((org.to_string(), k), id);
                }
            }
        }
        let mut results = Vec::with_capacity(rows.len());
        let mut fresh: Vec<Row> = Vec::new();
        for r in &rows {
            let key = (r.org_id.clone(), r.idempotency_key.clone());
            if let Some(id) = known.get(&key) {
                results.push(EventResult { idempotency_key: r.idempotency_key.clone(), event_id: id.clone(), outcome: Outcome::Duplicate });
            } else {
                known.insert(key, r.id.clone());
                fresh.push((*r).clone());
                results.push(EventResult { idempotency_key: r.idempotency_key.clone(), event_id: r.id.clone(), outcome: Outcome::Accepted });
            }
        }
        let insert_sql: Vec<String> = fresh.chunks(CHUNK).map(|c| sql_for(c.len())).collect();
        for (chunk, sql) in fresh.chunks(CHUNK).zip(&insert_sql) {
            // Another node may have stored the same key since the read above: the unique index
            // refuses the row and the whole batch rolls back, to be read again by the writer.
            let mut q = diesel::sql_query(sql.as_str()).into_boxed();
            for r in chunk {
                q = q
                    .bind::<Text, _>(r.id.as_str())
                    .bind::<Text, _>(r.org_id.as_str())
                    .bind::<Text, _>(r.idempotency_key.as_str())
                    .bind::<Text, _>(r.metric.as_str())
                    .bind::<BigInt, _>(r.quantity)
                    .bind::<Text, _>(r.properties.as_str())
                    .bind::<BigInt, _>(r.occurred_at)
                    .bind::<BigInt, _>(r.recorded_at)
                    .bind::<Text, _>(r.recorded_by.as_str());
            }
            q.execute(c).await?;
        }
        Ok::<_, Error>(results)
    })
}

fn valid_metric(m: &str) -> bool {
    (1..=100).contains(&m.len())
        && m.starts_with(|c: char| c.is_ascii_alphabetic())
        && m.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

/// Validates and records a call's events for `org` (the caller's own organization, or — for a
/// platform service key — the one it names).
pub async fn record(
    app: &App,
    principal: &Principal,
    organization: Option<&str>,
    events: Vec<EventInput>,
) -> Result<Vec<EventResult>> {
    principal.require_scope("usage:write")?;
    let org: OrgId = match organization {
        None => principal.org_id.clone(),
        Some(o) if o == principal.org_id.as_str() => principal.org_id.clone(),
        Some(o) => {
            if !principal.is_platform {
                return Err(Error::forbidden("only a platform service key may record usage for another organization"));
            }
            let id: OrgId = o.parse().map_err(|_| Error::bad_input("organizationId", "not an organization id"))?;
            let exists: i64 = with_conn!(app.db, c => {
                organizations::table.find(id.as_str()).count().get_result(c).await?
            });
            if exists == 0 {
                return Err(Error::NotFound("organization"));
            }
            id
        }
    };
    if events.is_empty() || events.len() > MAX_EVENTS_PER_CALL {
        return Err(Error::bad_input("events", format!("send 1 to {MAX_EVENTS_PER_CALL} events per call")));
    }
    let now = app.clock.now_ms();
    let mut seen = std::collections::HashSet::new();
    let mut order = Vec::with_capacity(events.len());
    let mut rows = Vec::with_capacity(events.len());
    for (i, e) in events.into_iter().enumerate() {
        let field = |f: &str| format!("events[{i}].{f}");
        if !valid_metric(&e.metric) {
            return Err(Error::bad_input(
                field("metric"),
                "1 to 100 characters: a letter, then letters, digits, `_`, `.`, `:` or `-`",
            ));
        }
        if e.quantity < 0 {
            return Err(Error::bad_input(field("quantity"), "must not be negative"));
        }
        let key = e.idempotency_key.trim();
        if key.is_empty() || key.len() > 255 || key.chars().any(|c| c.is_control()) {
            return Err(Error::bad_input(field("idempotencyKey"), "1 to 255 printable characters"));
        }
        let at = e.timestamp_ms.unwrap_or(now);
        if at > now + MAX_SKEW_MS {
            return Err(Error::bad_input(field("timestamp"), "is in the future"));
        }
        if at < now - MAX_AGE_MS {
            return Err(Error::bad_input(field("timestamp"), "is more than 35 days old"));
        }
        let properties = match e.properties {
            None | Some(serde_json::Value::Null) => "{}".to_string(),
            Some(v @ serde_json::Value::Object(_)) => v.to_string(),
            Some(_) => return Err(Error::bad_input(field("properties"), "must be a JSON object")),
        };
        if properties.len() > MAX_PROPERTIES_BYTES {
            return Err(Error::bad_input(field("properties"), "must be at most 4 KiB of JSON"));
        }
        order.push(key.to_string());
        // A key repeated inside one call is the same event: keep the first.
        if !seen.insert(key.to_string()) {
            continue;
        }
        rows.push(Row {
            id: MeterEventId::generate(now).to_string(),
            org_id: org.to_string(),
            idempotency_key: key.to_string(),
            metric: e.metric,
            quantity: e.quantity,
            properties,
            occurred_at: at,
            recorded_at: now,
            recorded_by: principal.actor_id(),
        });
    }
    let (reply, answer) = oneshot::channel();
    let closed = || Error::internal(anyhow::anyhow!("the usage recorder has stopped"));
    app.recorder.tx.send(Job { rows, reply }).await.map_err(|_| closed())?;
    let results = answer.await.map_err(|_| closed())??;
    // One answer per event sent, in order; a key repeated inside the call is a duplicate of its first.
    let mut by_key: HashMap<String, EventResult> =
        results.into_iter().map(|r| (r.idempotency_key.clone(), r)).collect();
    Ok(order
        .into_iter()
        .filter_map(|k| match by_key.get_mut(&k) {
            Some(first) => {
                let r = first.clone();
                first.outcome = Outcome::Duplicate;
                Some(r)
            }
            None => None,
        })
        .collect())
}
