//! The group-commit writer of reported usage events (`usage::reported`): one task commits every
//! waiting call's events in one transaction and one multi-row insert, reading which idempotency
//! keys exist first; each caller is answered only after commit, so an acknowledged event is never
//! lost. State and its task only; it takes the database, never the app.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::platform::db::Db;
use crate::platform::db::schema::metered_events;
use crate::transaction;

/// Rows per insert statement (9 binds a row).
const CHUNK: usize = 500;

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
pub struct Row {
    pub id: String,
    pub org_id: String,
    pub idempotency_key: String,
    pub metric: String,
    pub quantity: i64,
    pub properties: String,
    pub occurred_at: i64,
    pub recorded_at: i64,
    pub recorded_by: String,
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

    /// Commits `rows` with whatever else is waiting; answers once they are durable (or not).
    pub async fn commit(&self, rows: Vec<Row>) -> Result<Vec<EventResult>> {
        let (reply, answer) = oneshot::channel();
        let closed = || Error::internal(anyhow::anyhow!("the usage recorder has stopped"));
        self.tx.send(Job { rows, reply }).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
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
