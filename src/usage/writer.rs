//! The usage writer: one batch of metered calls written in one transaction — the raw records as
//! segment rows (one per organization, UTC day and batch), upserts of the hourly and daily roll-ups
//! and their latency histograms — and the task that drains the meter into it.

use std::collections::HashMap;
use std::sync::Arc;

use diesel::sql_types::{BigInt, Integer, Text};
use diesel_async::RunQueryDsl;

use super::histogram::Histogram;
use super::meter::{ALL, DAY_MS, HOUR_MS, UsageRecord};
use crate::error::{Error, Result};
use crate::platform::db::{Conn, Db};
use crate::platform::ids::UsageId;

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
        let key = r.credential();
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
                let key = r.credential();
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
            conn.spawn_blocking(move |c| {
                let written = sqlite::write(c, &batch);
                drop(batch);
                crate::platform::memory::release_thread_memory();
                written
            })
            .await?;
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
