//! The meter: one [`UsageRecord`] per API call, pushed into a bounded in-memory channel (no I/O,
//! never waits) and written by a background writer in batches — the raw records as one segment
//! row per organization and day, plus upserts of the hourly and daily roll-ups and their latency
//! histograms, in one transaction. A batch is written when it is full or on the flush timer, and
//! at shutdown. A full channel drops the record and counts it (`/readyz` reports the count); a
//! failed write keeps the batch for the next attempt.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use diesel::sql_types::{BigInt, Integer, Text};
use diesel_async::RunQueryDsl;
use tokio::sync::{Mutex, Notify, mpsc};

use super::histogram::Histogram;
use crate::error::{Error, Result};
use crate::platform::db::{Conn, Db};
use crate::platform::ids::{KeyId, OrgId, UsageId};

/// The roll-up key and operation that stand for "all of them".
pub const ALL: &str = "*";
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// Which surface served a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Graphql,
    Rest,
    /// A key presented to `verifyApiKey`, counted for the verified key.
    Verify,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Graphql => "graphql",
            Source::Rest => "rest",
            Source::Verify => "verify",
        }
    }
}

/// One API call, as metered.
#[derive(Debug, Clone)]
pub struct UsageRecord {
    pub org_id: OrgId,
    pub api_key_id: Option<KeyId>,
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

/// What a handler knows about a call (who, which operation, what it cost); the HTTP layer adds
/// what only it knows (status, latency, sizes) and meters it. Carried in response extensions.
#[derive(Debug, Clone)]
pub struct UsageTag {
    pub org_id: OrgId,
    pub api_key_id: Option<KeyId>,
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
}

/// What the meter has done since start, for `/readyz` and logs.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct MeterStats {
    pub buffered: usize,
    pub written: u64,
    pub dropped: u64,
    /// Failed writes in a row of the batch held for the next one (0: writing is healthy).
    pub failing_writes: u32,
}

impl Meter {
    pub fn new(capacity: usize, batch_size: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity);
        Self {
            tx,
            state: Mutex::new(WriterState { rx, held: Vec::new() }),
            failures: AtomicU32::new(0),
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
            // The whole batch first, always: after an outage it goes in at once.
            let batch = Arc::new(batch);
            let e = match write_batch(db, batch.clone()).await {
                Ok(()) => {
                    self.failures.store(0, Ordering::Relaxed);
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

/// Runs the writer until `stop` fires: a batch when one is full, everything on each tick.
pub fn spawn_writer(
    app: Arc<crate::app::App>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let every = std::time::Duration::from_millis(app.config.usage_flush_interval_ms.max(50));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let everything = tokio::select! {
                _ = tick.tick() => true,
                _ = app.meter.wake.notified() => false,
                _ = stop.changed() => return,
            };
            // Errors are logged and the batch retried on the next wake.
            let _ = if everything { app.meter.drain(&app.db).await } else { app.meter.drain_full(&app.db).await };
            super::retention::maybe_prune(&app).await;
        }
    })
}

/// Raw records as stored: one segment per organization, UTC day and batch (see the
/// `usage_segments` migration for the layout).
#[derive(diesel::Insertable)]
#[diesel(table_name = crate::platform::db::schema::usage_segments)]
struct Segment<'a> {
    id: String,
    org_id: &'a str,
    first_at: i64,
    last_at: i64,
    record_count: i32,
    records: String,
}

/// A roll-up cell: granularity, organization, bucket start, key, operation.
#[derive(Hash, PartialEq, Eq, Clone)]
struct Cell<'a> {
    granularity: &'static str,
    level: i32,
    org: &'a str,
    bucket: i64,
    key: &'a str,
    operation: &'a str,
}

#[derive(Default, Clone, Copy)]
struct Sums {
    calls: i64,
    latency_us: i64,
    request_bytes: i64,
    response_bytes: i64,
    cost_units: i64,
    quota_units: i64,
}

/// (organization, hour, key, operation, status or latency bin): how a batch is first aggregated.
type Fine<'a> = (&'a str, i64, &'a str, &'a str, i32);

/// Every roll-up cell a fine aggregate belongs to: hour and day, and a small cube — (key,
/// operation), (key, all), (all, operation), (all, all) — so each analytics question reads the one
/// level that answers it (an organization-wide summary reads a few rows per bucket however many
/// keys and operations there are).
fn cells<'a>((org, hour, key, op, extra): Fine<'a>) -> impl Iterator<Item = (Cell<'a>, i32)> {
    let day = hour.div_euclid(DAY_MS) * DAY_MS;
    [("hour", hour), ("day", day)].into_iter().flat_map(move |(granularity, bucket)| {
        [(0, key, op), (1, key, ALL), (2, ALL, op), (3, ALL, ALL)]
            .map(move |(level, key, operation)| (Cell { granularity, level, org, bucket, key, operation }, extra))
    })
}

/// Latency histogram bin of a latency in microseconds: bin `i` holds `[1.05^i, 1.05^(i+1))`.
pub fn latency_bin(latency_us: u64) -> i32 {
    if latency_us <= 1 {
        return 0;
    }
    ((latency_us as f64).ln() / 1.05f64.ln()).floor() as i32
}

/// The value a bin stands for: its geometric middle, within 2.47 % of every latency in it.
pub fn bin_value_us(bin: i32) -> f64 {
    1.05f64.powf(bin as f64 + 0.5)
}

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What one batch writes: its raw records, the roll-up cells it adds to, and the latency
/// histograms of those cells (before merging with what is stored).
struct Aggregate<'a> {
    segments: Vec<Segment<'a>>,
    rollups: Vec<((Cell<'a>, i32), Sums)>,
    histograms: FastMap<Cell<'a>, Histogram>,
    /// The (granularity, organization, level, bucket) groups whose stored histograms are merged.
    buckets: Vec<(&'static str, &'a str, i32, i64)>,
}

fn aggregate(batch: &[UsageRecord]) -> Aggregate<'_> {
    // First by (org, hour, key, operation, status) and (…, latency bin): one hash per record.
    let mut fine: FastMap<Fine<'_>, Sums> = HashMap::default();
    let mut fine_bins: FastMap<Fine<'_>, i64> = HashMap::default();
    for r in batch {
        let key = r.api_key_id.as_ref().map(|k| k.as_str()).unwrap_or("");
        let hour = r.at_ms.div_euclid(HOUR_MS) * HOUR_MS;
        let s = fine.entry((r.org_id.as_str(), hour, key, &r.operation, r.status as i32)).or_default();
        s.calls += 1;
        s.latency_us += r.latency_us as i64;
        s.request_bytes += r.request_bytes as i64;
        s.response_bytes += r.response_bytes as i64;
        s.cost_units += r.cost_units as i64;
        s.quota_units += r.quota_units as i64;
        *fine_bins.entry((r.org_id.as_str(), hour, key, &r.operation, latency_bin(r.latency_us))).or_default() += 1;
    }
    // Then every roll-up cell from those.
    let mut rollups: FastMap<(Cell<'_>, i32), Sums> = HashMap::default();
    for (k, v) in fine {
        for cell in cells(k) {
            let s = rollups.entry(cell).or_default();
            s.calls += v.calls;
            s.latency_us += v.latency_us;
            s.request_bytes += v.request_bytes;
            s.response_bytes += v.response_bytes;
            s.cost_units += v.cost_units;
            s.quota_units += v.quota_units;
        }
    }
    let mut histograms: FastMap<Cell<'_>, Histogram> = HashMap::default();
    for (k, n) in fine_bins {
        for (cell, bin) in cells(k) {
            histograms.entry(cell).or_default().add(bin, n);
        }
    }
    let mut buckets: Vec<_> = histograms.keys().map(|c| (c.granularity, c.org, c.level, c.bucket)).collect();
    buckets.sort_unstable();
    buckets.dedup();
    // Raw records by organization and day, in the order they were metered.
    let mut groups: FastMap<(&str, i64), Vec<&UsageRecord>> = HashMap::default();
    for r in batch {
        groups.entry((r.org_id.as_str(), r.at_ms.div_euclid(DAY_MS))).or_default().push(r);
    }
    let segments = groups
        .into_iter()
        .map(|((org_id, _), records)| {
            let first_at = records.iter().map(|r| r.at_ms).min().unwrap_or(0);
            let last_at = records.iter().map(|r| r.at_ms).max().unwrap_or(0);
            let mut json = Vec::with_capacity(records.len() * 96 + 2);
            json.push(b'[');
            for (i, r) in records.iter().enumerate() {
                if i > 0 {
                    json.push(b',');
                }
                let key = r.api_key_id.as_ref().map(|k| k.as_str()).unwrap_or("");
                let row = (
                    key,
                    r.source.as_str(),
                    &*r.operation,
                    r.status,
                    r.latency_us,
                    r.request_bytes,
                    r.response_bytes,
                    r.cost_units,
                    r.quota_units,
                    r.at_ms,
                );
                // Writing into a Vec cannot fail, and these are strings and integers.
                let _ = serde_json::to_writer(&mut json, &row);
            }
            json.push(b']');
            Segment {
                id: UsageId::generate(first_at).to_string(),
                org_id,
                first_at,
                last_at,
                record_count: records.len() as i32,
                records: String::from_utf8(json).unwrap_or_default(),
            }
        })
        .collect();
    Aggregate { segments, rollups: rollups.into_iter().collect(), histograms, buckets }
}

/// Stored histograms of a batch's bucket groups: (granularity, organization, level, bucket) → key →
/// operation → encoded histogram.
type Stored<'a> = HashMap<(&'static str, &'a str, i32, i64), HashMap<String, HashMap<String, String>>>;

/// The stored histograms of one bucket group, as `(key, operation, histogram)` rows; either backend.
macro_rules! stored_histograms {
    ($group:expr) => {{
        use crate::platform::db::schema::usage_latency as ul;
        use diesel::{ExpressionMethods as _, QueryDsl as _};
        let (granularity, org, level, bucket) = *$group;
        ul::table
            .filter(ul::granularity.eq(granularity))
            .filter(ul::org_id.eq(org))
            .filter(ul::level.eq(level))
            .filter(ul::bucket_start.eq(bucket))
            .select((ul::api_key_id, ul::operation, ul::histogram))
    }};
}

fn keep_stored<'a>(
    stored: &mut Stored<'a>,
    group: (&'static str, &'a str, i32, i64),
    rows: Vec<(String, String, String)>,
) {
    let entry = stored.entry(group).or_default();
    for (key, operation, histogram) in rows {
        entry.entry(key).or_default().insert(operation, histogram);
    }
}

/// Merges the stored histograms into the batch's own.
fn merge_stored<'a>(histograms: &mut FastMap<Cell<'a>, Histogram>, stored: &Stored<'a>) {
    for (cell, h) in histograms.iter_mut() {
        if let Some(old) = stored
            .get(&(cell.granularity, cell.org, cell.level, cell.bucket))
            .and_then(|keys| keys.get(cell.key))
            .and_then(|ops| ops.get(cell.operation))
        {
            h.merge(&Histogram::decode(old));
        }
    }
}

/// Writes one batch: raw records, roll-ups and histograms, all or nothing.
pub async fn write_batch(db: &Db, batch: Arc<Vec<UsageRecord>>) -> Result<()> {
    match db.get().await? {
        // SQLite: the whole batch in one blocking call on the connection's thread, one prepared
        // statement per table reused for every row (parsing a multi-row statement costs more than
        // the insert itself).
        Conn::Sqlite(mut conn) => {
            conn.spawn_blocking(move |c| sqlite::write(c, &batch)).await?;
            Ok(())
        }
        Conn::Pg(mut conn) => write_batch_pg(&mut conn, db, &batch).await,
    }
}

/// Binds a chunk of roll-up rows to a boxed multi-row upsert (`ROLLUP_UPSERT_*`), either backend.
macro_rules! bind_rollups {
    ($q:expr, $chunk:expr) => {{
        let mut q = $q;
        for ((cell, status), s) in $chunk {
            q = q
                .bind::<Text, _>(cell.granularity)
                .bind::<Text, _>(cell.org)
                .bind::<Integer, _>(cell.level)
                .bind::<BigInt, _>(cell.bucket)
                .bind::<Text, _>(cell.key)
                .bind::<Text, _>(cell.operation)
                .bind::<Integer, _>(*status)
                .bind::<BigInt, _>(s.calls)
                .bind::<BigInt, _>(s.latency_us)
                .bind::<BigInt, _>(s.request_bytes)
                .bind::<BigInt, _>(s.response_bytes)
                .bind::<BigInt, _>(s.cost_units)
                .bind::<BigInt, _>(s.quota_units);
        }
        q
    }};
}

/// Binds a chunk of (cell, encoded histogram) rows to a boxed multi-row upsert (`HISTOGRAM_UPSERT_*`).
macro_rules! bind_histograms {
    ($q:expr, $chunk:expr) => {{
        let mut q = $q;
        for (cell, encoded) in $chunk {
            q = q
                .bind::<Text, _>(cell.granularity)
                .bind::<Text, _>(cell.org)
                .bind::<Integer, _>(cell.level)
                .bind::<BigInt, _>(cell.bucket)
                .bind::<Text, _>(cell.key)
                .bind::<Text, _>(cell.operation)
                .bind::<Text, _>(encoded.as_str());
        }
        q
    }};
}

mod sqlite {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Integer, Text};

    use super::{CHUNK, Stored, UsageRecord, aggregate, histogram_sql, keep_stored, merge_stored, rollup_sql};
    use crate::platform::db::schema::usage_segments;

    pub fn write(c: &mut SqliteConnection, batch: &[UsageRecord]) -> QueryResult<()> {
        let mut agg = aggregate(batch);
        c.immediate_transaction(|c| {
            let mut stored = Stored::new();
            for group in &agg.buckets {
                keep_stored(&mut stored, *group, stored_histograms!(group).load(c)?);
            }
            merge_stored(&mut agg.histograms, &stored);
            diesel::insert_into(usage_segments::table).values(&agg.segments).execute(c)?;
            // Multi-row statements: a batch can touch thousands of cells, and one statement per
            // 500 rows costs less than building and preparing an upsert per row.
            for chunk in agg.rollups.chunks(CHUNK) {
                bind_rollups!(diesel::sql_query(rollup_sql(chunk.len())).into_boxed(), chunk).execute(c)?;
            }
            let merged: Vec<_> = agg.histograms.iter().map(|(cell, h)| (cell, h.encode())).collect();
            for chunk in merged.chunks(CHUNK) {
                bind_histograms!(diesel::sql_query(histogram_sql(chunk.len())).into_boxed(), chunk).execute(c)?;
            }
            Ok(())
        })
    }
}

const ROLLUP_UPSERT_HEAD: &str = "INSERT INTO usage_rollups (granularity, org_id, level, bucket_start, api_key_id, operation, \
     status, calls, latency_us_sum, request_bytes, response_bytes, cost_units, quota_units) VALUES ";
const ROLLUP_UPSERT_TAIL: &str = " ON CONFLICT (granularity, org_id, level, bucket_start, api_key_id, operation, status) DO UPDATE SET \
     calls = usage_rollups.calls + excluded.calls, \
     latency_us_sum = usage_rollups.latency_us_sum + excluded.latency_us_sum, \
     request_bytes = usage_rollups.request_bytes + excluded.request_bytes, \
     response_bytes = usage_rollups.response_bytes + excluded.response_bytes, \
     cost_units = usage_rollups.cost_units + excluded.cost_units, \
     quota_units = usage_rollups.quota_units + excluded.quota_units";
const HISTOGRAM_UPSERT_HEAD: &str =
    "INSERT INTO usage_latency (granularity, org_id, level, bucket_start, api_key_id, operation, histogram) VALUES ";
const HISTOGRAM_UPSERT_TAIL: &str = " ON CONFLICT (granularity, org_id, level, bucket_start, api_key_id, operation) \
     DO UPDATE SET histogram = excluded.histogram";
/// Serializes histogram read-merge-writes across nodes on PostgreSQL (SQLite has one writer).
const HISTOGRAM_LOCK: i64 = 0x6761_6e74_7279;

/// Rows per multi-row statement (≤ 13 binds a row keeps every statement under the bind limit).
const CHUNK: usize = 500;

fn values_list(rows: usize, per_row: usize) -> String {
    let one = format!("({})", vec!["?"; per_row].join(", "));
    vec![one; rows].join(", ")
}

/// The roll-up upsert for `rows` rows, with `?` placeholders.
fn rollup_sql(rows: usize) -> String {
    format!("{ROLLUP_UPSERT_HEAD}{}{ROLLUP_UPSERT_TAIL}", values_list(rows, 13))
}

/// The histogram upsert for `rows` rows, with `?` placeholders.
fn histogram_sql(rows: usize) -> String {
    format!("{HISTOGRAM_UPSERT_HEAD}{}{HISTOGRAM_UPSERT_TAIL}", values_list(rows, 7))
}

/// PostgreSQL: multi-row statements (one round trip per 500 rows), histograms merged under an
/// advisory lock so two nodes never lose each other's counts.
async fn write_batch_pg(conn: &mut diesel_async::AsyncPgConnection, db: &Db, batch: &[UsageRecord]) -> Result<()> {
    use diesel_async::AsyncConnection as _;
    let Aggregate { segments, rollups, mut histograms, buckets } = aggregate(batch);
    conn.transaction(async |c| {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({HISTOGRAM_LOCK})")).execute(c).await?;
        let mut stored = Stored::new();
        for group in &buckets {
            keep_stored(&mut stored, *group, stored_histograms!(group).load(c).await?);
        }
        merge_stored(&mut histograms, &stored);
        diesel::insert_into(crate::platform::db::schema::usage_segments::table).values(&segments).execute(c).await?;
        for chunk in rollups.chunks(CHUNK) {
            bind_rollups!(diesel::sql_query(db.sql(&rollup_sql(chunk.len()))).into_boxed(), chunk).execute(c).await?;
        }
        let merged: Vec<(&Cell<'_>, String)> = histograms.iter().map(|(cell, h)| (cell, h.encode())).collect();
        for chunk in merged.chunks(CHUNK) {
            bind_histograms!(diesel::sql_query(db.sql(&histogram_sql(chunk.len()))).into_boxed(), chunk)
                .execute(c)
                .await?;
        }
        Ok::<_, Error>(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_bins_stand_for_their_latencies_within_two_and_a_half_percent() {
        for us in [2u64, 3, 10, 99, 100, 101, 1_000, 12_345, 999_999, 30_000_000] {
            let v = bin_value_us(latency_bin(us));
            let err = (v - us as f64).abs() / us as f64;
            assert!(err <= 0.0247 + 1e-9, "{us} µs → {v} ({err})");
        }
        assert!(latency_bin(1_000) < latency_bin(1_100));
    }
}
