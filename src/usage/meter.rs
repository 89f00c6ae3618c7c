//! The meter: one [`UsageRecord`] per API call, pushed into a bounded in-memory channel (no I/O,
//! never waits), and the policy of draining it into the writer (`usage::writer`) in batches — when
//! one is full or on the flush timer, and at shutdown. A full channel drops the record and counts
//! it (`/readyz` reports the count); a failed write keeps the batch for the next attempt, and a
//! batch that keeps failing while the database answers is written record by record.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use tokio::sync::{Mutex, Notify, mpsc};

use super::writer::write_batch;
use crate::error::Result;
use crate::platform::db::Db;
use crate::platform::ids::{AppId, KeyId, OrgId};

/// The roll-up key and operation that stand for "all of them".
pub const ALL: &str = "*";
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// Which surface served a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Graphql,
    Rest,
    /// A query, mutation or subscription start over `/graphql/ws`.
    Websocket,
    /// A key presented to `verifyApiKey`, counted for the verified key.
    Verify,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Graphql => "graphql",
            Source::Rest => "rest",
            Source::Websocket => "websocket",
            Source::Verify => "verify",
        }
    }
}

/// One API call, as metered.
#[derive(Debug, Clone)]
pub struct UsageRecord {
    pub org_id: OrgId,
    pub api_key_id: Option<KeyId>,
    /// The marketplace app behind an OAuth access token.
    pub app_id: Option<AppId>,
    pub source: Source,
    pub operation: Arc<str>,
    pub status: u16,
    pub latency_us: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub cost_units: u64,
    /// What the limiter charged the call to the monthly quota (0 when refused; else 1, or the
    /// operation's cost).
    pub quota_units: u64,
    pub at_ms: i64,
}

impl UsageRecord {
    /// The credential dimension of roll-ups and raw records: the key (`key_…`), the app
    /// (`app_…`) of an OAuth token, or `""` for a session.
    pub fn credential(&self) -> &str {
        match (&self.api_key_id, &self.app_id) {
            (Some(k), _) => k.as_str(),
            (None, Some(a)) => a.as_str(),
            (None, None) => "",
        }
    }
}

/// What a handler knows about a call (who, which operation, what it cost); the HTTP layer adds
/// what only it knows (status, latency, sizes) and meters it. Carried in response extensions.
#[derive(Debug, Clone)]
pub struct UsageTag {
    pub org_id: OrgId,
    pub api_key_id: Option<KeyId>,
    pub app_id: Option<AppId>,
    pub source: Source,
    pub operation: Arc<str>,
    pub cost_units: u64,
    pub quota_units: u64,
    /// The status to record instead of the HTTP one: a GraphQL response with errors is 200 on the
    /// wire but is metered with its first error's status (404 for `NOT_FOUND`, …).
    pub status: Option<u16>,
}

impl UsageTag {
    pub fn into_record(
        self,
        status: u16,
        latency_us: u64,
        request_bytes: u64,
        response_bytes: u64,
        at_ms: i64,
    ) -> UsageRecord {
        UsageRecord {
            org_id: self.org_id,
            api_key_id: self.api_key_id,
            app_id: self.app_id,
            source: self.source,
            operation: self.operation,
            status: self.status.unwrap_or(status),
            latency_us,
            request_bytes,
            response_bytes,
            cost_units: self.cost_units,
            quota_units: self.quota_units,
            at_ms,
        }
    }
}

struct WriterState {
    rx: mpsc::Receiver<UsageRecord>,
    /// Records taken from the channel and not yet written — a batch whose write failed, or a
    /// partial batch waiting for the tick — written first next time.
    held: Vec<UsageRecord>,
}

/// After this many failed writes of one batch, it is written record by record (see
/// [`Meter::write_one_by_one`]), so one record the database refuses cannot hold up the rest.
const SPLIT_AFTER_FAILURES: u32 = 3;
/// Refusals in a row that end a record-by-record pass (the database has stopped taking writes).
const REFUSED_IN_A_ROW: usize = 20;

pub struct Meter {
    tx: mpsc::Sender<UsageRecord>,
    state: Mutex<WriterState>,
    batch_size: usize,
    capacity: usize,
    /// Wakes the writer when a full batch is waiting.
    pub wake: Notify,
    dropped: AtomicU64,
    written: AtomicU64,
    last_drop_log_ms: AtomicI64,
    /// When retention last ran (epoch ms).
    pub last_prune_ms: AtomicI64,
    /// Failed writes of the held batch in a row (0 when the last write succeeded).
    failures: AtomicU32,
    /// Batches written since start.
    batches: AtomicU64,
    /// How old the oldest record of the last batch was when it was written (ms, wall clock).
    lag_ms: AtomicI64,
}

/// What the meter has done since start, for `/readyz` and logs.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct MeterStats {
    pub buffered: usize,
    pub written: u64,
    pub dropped: u64,
    /// Failed writes in a row of the batch held for the next one (0: writing is healthy).
    pub failing_writes: u32,
    /// Batches written.
    pub batches: u64,
    /// How old the oldest record of the last batch written was when it was written (ms).
    pub lag_ms: i64,
}

impl Meter {
    pub fn new(capacity: usize, batch_size: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity);
        Self {
            tx,
            state: Mutex::new(WriterState { rx, held: Vec::new() }),
            failures: AtomicU32::new(0),
            batches: AtomicU64::new(0),
            lag_ms: AtomicI64::new(0),
            batch_size,
            capacity,
            wake: Notify::new(),
            dropped: AtomicU64::new(0),
            written: AtomicU64::new(0),
            last_drop_log_ms: AtomicI64::new(0),
            last_prune_ms: AtomicI64::new(0),
        }
    }

    /// Meters one call. Never blocks and never fails the request: a full buffer drops the record
    /// and counts it.
    pub fn record(&self, record: UsageRecord) {
        let at = record.at_ms;
        match self.tx.try_send(record) {
            Ok(()) => {
                if self.capacity - self.tx.capacity() >= self.batch_size {
                    self.wake.notify_one();
                }
            }
            Err(_) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // One warning a minute at most: the buffer is full because writes are too slow.
                let last = AtomicI64::load(&self.last_drop_log_ms, Ordering::Relaxed);
                if at - last >= 60_000
                    && self.last_drop_log_ms.compare_exchange(last, at, Ordering::Relaxed, Ordering::Relaxed).is_ok()
                {
                    tracing::warn!(dropped_total = n, "usage buffer full: usage records dropped");
                }
                self.wake.notify_one();
            }
        }
    }

    /// Writes a batch that failed several times, while the database answers, one record at a
    /// time. A refused record is bad data only when a later record of the pass goes in and it is
    /// refused once more after that: then it is dropped (logged, counted in `dropped`) instead of
    /// stopping all metering. Refused records
    /// with nothing written after them — the database stopped taking writes — are kept with the
    /// rest, and a run of [`REFUSED_IN_A_ROW`] refusals ends the pass.
    async fn write_one_by_one(
        &self,
        db: &Db,
        batch: Vec<UsageRecord>,
    ) -> std::result::Result<usize, (crate::error::Error, Vec<UsageRecord>)> {
        let (mut written, mut dropped) = (0, 0);
        let mut refused: Vec<UsageRecord> = Vec::new();
        let mut last_error = None;
        let mut records = batch.into_iter();
        for record in records.by_ref() {
            let one = Arc::new(vec![record]);
            match write_batch(db, one.clone()).await {
                Ok(()) => {
                    written += 1;
                    // The database takes writes again: the refused records get one more try (an
                    // outage may just have ended); those refused again are bad data.
                    for record in std::mem::take(&mut refused) {
                        match write_batch(db, Arc::new(vec![record])).await {
                            Ok(()) => written += 1,
                            Err(e) => {
                                tracing::error!(error = ?e, "a usage record the database refuses was dropped");
                                dropped += 1;
                            }
                        }
                    }
                }
                Err(e) => {
                    refused.push(Arc::try_unwrap(one).unwrap_or_else(|shared| (*shared).clone()).remove(0));
                    last_error = Some(e);
                    if refused.len() >= REFUSED_IN_A_ROW {
                        break;
                    }
                }
            }
        }
        self.written.fetch_add(written as u64, Ordering::Relaxed);
        self.dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        match last_error {
            Some(e) if !refused.is_empty() => {
                refused.extend(records);
                Err((e, refused))
            }
            _ => Ok(written),
        }
    }

    pub fn stats(&self) -> MeterStats {
        MeterStats {
            buffered: self.capacity - self.tx.capacity(),
            written: AtomicU64::load(&self.written, Ordering::Relaxed),
            dropped: AtomicU64::load(&self.dropped, Ordering::Relaxed),
            failing_writes: AtomicU32::load(&self.failures, Ordering::Relaxed),
            batches: AtomicU64::load(&self.batches, Ordering::Relaxed),
            lag_ms: AtomicI64::load(&self.lag_ms, Ordering::Relaxed),
        }
    }

    /// Writes everything buffered, batch by batch. Returns the number of records written; stops at
    /// the first failed batch (kept for the next call).
    pub async fn drain(&self, db: &Db) -> Result<usize> {
        self.write_batches(db, true).await
    }

    /// Writes full batches only; a partial batch waits (in memory, first in line) for the next
    /// tick. Without this, a writer woken by a full batch would go on writing whatever arrived
    /// during each write — ever smaller batches, each paying a transaction.
    pub async fn drain_full(&self, db: &Db) -> Result<usize> {
        self.write_batches(db, false).await
    }

    async fn write_batches(&self, db: &Db, partial: bool) -> Result<usize> {
        let mut state = self.state.lock().await;
        let mut total = 0;
        loop {
            let mut batch = std::mem::take(&mut state.held);
            while batch.len() < self.batch_size {
                match state.rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            if batch.is_empty() || (!partial && batch.len() < self.batch_size) {
                state.held = batch;
                return Ok(total);
            }
            let n = batch.len();
            let oldest = batch.iter().map(|r| r.at_ms).min().unwrap_or(0);
            // The whole batch first, always: after an outage it goes in at once.
            let batch = Arc::new(batch);
            let e = match write_batch(db, batch.clone()).await {
                Ok(()) => {
                    self.failures.store(0, Ordering::Relaxed);
                    self.batches.fetch_add(1, Ordering::Relaxed);
                    let wall = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as i64);
                    self.lag_ms.store((wall - oldest).max(0), Ordering::Relaxed);
                    total += n;
                    self.written.fetch_add(n as u64, Ordering::Relaxed);
                    continue;
                }
                Err(e) => e,
            };
            let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
            let batch = Arc::try_unwrap(batch).unwrap_or_else(|shared| (*shared).clone());
            // Failing again and again while the database answers: look for the records it refuses.
            if failures >= SPLIT_AFTER_FAILURES && db.ping().await.is_ok() {
                match self.write_one_by_one(db, batch).await {
                    Ok(written) => {
                        self.failures.store(0, Ordering::Relaxed);
                        total += written;
                        continue;
                    }
                    Err((e, kept)) => {
                        state.held = kept;
                        return Err(e);
                    }
                }
            }
            tracing::warn!(error = ?e, records = n, "usage write failed; will retry");
            state.held = batch;
            return Err(e);
        }
    }
}
