//! Analytics over the roll-ups — never the raw records, so an answer's cost grows with the number
//! of roll-up cells in the range (hours × keys × operations × statuses), not with traffic.
//! Percentiles come from the latency histograms (bins 5 % wide): within 2.5 % of the exact value.

use diesel::sql_types::{BigInt, Integer, Text};
use diesel_async::RunQueryDsl;

use super::histogram::Histogram;
use super::meter::{DAY_MS, HOUR_MS};
use super::writer::bin_value_us;
use crate::app::App;
use crate::error::{Error, Result};
use crate::platform::ids::OrgId;
use crate::with_conn;

/// Which roll-ups to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Hour,
    Day,
}

impl Granularity {
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }
    pub fn millis(self) -> i64 {
        match self {
            Granularity::Hour => HOUR_MS,
            Granularity::Day => DAY_MS,
        }
    }
}

/// A dimension to group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    None,
    Key,
    Operation,
    Bucket,
}

impl Dim {
    /// The GROUP BY prefix (PostgreSQL refuses a constant there).
    fn group(self) -> &'static str {
        match self {
            Dim::None => "",
            Dim::Key => "api_key_id, ",
            Dim::Operation => "operation, ",
            Dim::Bucket => "bucket_start, ",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Dim::None => "''",
            Dim::Key => "api_key_id",
            Dim::Operation => "operation",
            Dim::Bucket => "CAST(bucket_start AS TEXT)",
        }
    }
}

/// What to read: an organization's cells in `[start, end)`, optionally one key's.
#[derive(Debug, Clone)]
pub struct Scope {
    pub org: OrgId,
    pub key: Option<String>,
    pub start: i64,
    pub end: i64,
    pub granularity: Granularity,
}

impl Scope {
    /// The principal's organization over `[start, end)`, optionally one of its keys (another
    /// organization's key is NOT_FOUND, as an unknown one).
    pub async fn of(
        app: &App,
        principal: &crate::auth::Principal,
        start: i64,
        end: i64,
        key: Option<&str>,
        granularity: Granularity,
    ) -> Result<Scope> {
        let key = match key {
            Some(id) => Some(crate::keys::service::key_of_org(app, principal, id).await?.to_string()),
            None => None,
        };
        Ok(Scope { org: principal.org_id.clone(), key, start, end, granularity })
    }
}

/// Figures for a set of calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub calls: i64,
    /// Calls answered 4xx or 5xx.
    pub errors: i64,
    pub client_errors: i64,
    pub server_errors: i64,
    /// Calls refused by a limit (429).
    pub limited: i64,
    pub latency_us_sum: i64,
    pub request_bytes: i64,
    pub response_bytes: i64,
    pub cost_units: i64,
    pub quota_units: i64,
    /// (latency bin, calls), ascending by bin.
    pub bins: Vec<(i32, i64)>,
}

impl Stats {
    /// Share of calls without an error; none without calls.
    pub fn success_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| (self.calls - self.errors) as f64 / self.calls as f64)
    }

    pub fn avg_latency_ms(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.latency_us_sum as f64 / self.calls as f64 / 1000.0)
    }

    /// The `p`-th percentile latency (0 < p ≤ 100) in milliseconds, from the histogram.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        let total: i64 = self.bins.iter().map(|(_, n)| n).sum();
        if total == 0 {
            return None;
        }
        let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as i64;
        let mut seen = 0;
        for (bin, n) in &self.bins {
            seen += n;
            if seen >= rank {
                return Some(bin_value_us(*bin) / 1000.0);
            }
        }
        self.bins.last().map(|(b, _)| bin_value_us(*b) / 1000.0)
    }

    fn add_status(&mut self, row: &StatusRow) {
        self.calls += row.calls;
        if row.status >= 400 {
            self.errors += row.calls;
        }
        if (400..500).contains(&row.status) {
            self.client_errors += row.calls;
        }
        if row.status >= 500 {
            self.server_errors += row.calls;
        }
        if row.status == 429 {
            self.limited += row.calls;
        }
        self.latency_us_sum += row.latency_us_sum;
        self.request_bytes += row.request_bytes;
        self.response_bytes += row.response_bytes;
        self.cost_units += row.cost_units;
        self.quota_units += row.quota_units;
    }
}

#[derive(diesel::QueryableByName, Debug)]
pub struct StatusRow {
    #[diesel(sql_type = Text)]
    pub dim: String,
    #[diesel(sql_type = Integer)]
    pub status: i32,
    #[diesel(sql_type = BigInt)]
    pub calls: i64,
    #[diesel(sql_type = BigInt)]
    pub latency_us_sum: i64,
    #[diesel(sql_type = BigInt)]
    pub request_bytes: i64,
    #[diesel(sql_type = BigInt)]
    pub response_bytes: i64,
    #[diesel(sql_type = BigInt)]
    pub cost_units: i64,
    #[diesel(sql_type = BigInt)]
    pub quota_units: i64,
}

#[derive(diesel::QueryableByName, Debug)]
struct HistogramRow {
    #[diesel(sql_type = Text)]
    dim: String,
    #[diesel(sql_type = Text)]
    histogram: String,
}

/// The WHERE clause: the scope's range, and the level of the roll-up cube that answers `dim`
/// (binds: granularity, org, start, end, then the key when the scope has one).
fn filter_sql(scope: &Scope, dim: Dim) -> String {
    let level = match (&scope.key, dim) {
        (Some(_), Dim::Operation) => 0,
        (Some(_), _) | (None, Dim::Key) => 1,
        (None, Dim::Operation) => 2,
        (None, _) => 3,
    };
    let key = if scope.key.is_some() { " AND api_key_id = ?" } else { "" };
    format!("WHERE granularity = ? AND org_id = ? AND level = {level} AND bucket_start >= ? AND bucket_start < ?{key}")
}

/// Stats per value of `dim` (one entry with dim `""` for [`Dim::None`]), in no particular order.
pub async fn grouped(app: &App, scope: &Scope, dim: Dim) -> Result<Vec<(String, Stats)>> {
    let (rows, histograms) = read(app, scope, dim).await?;
    let mut out: std::collections::HashMap<String, Stats> = std::collections::HashMap::new();
    for r in &rows {
        out.entry(r.dim.clone()).or_default().add_status(r);
    }
    let mut merged: std::collections::HashMap<String, Histogram> = std::collections::HashMap::new();
    for h in histograms {
        merged.entry(h.dim).or_default().merge(&Histogram::decode(&h.histogram));
    }
    for (dim, h) in merged {
        out.entry(dim).or_default().bins = h.bins().collect();
    }
    Ok(out.into_iter().collect())
}

/// Calls per status code in the scope.
pub async fn by_status(app: &App, scope: &Scope) -> Result<Vec<(i32, i64)>> {
    let rows = read_statuses(app, scope, Dim::None).await?;
    let mut map = std::collections::BTreeMap::new();
    for r in rows {
        *map.entry(r.status).or_insert(0) += r.calls;
    }
    Ok(map.into_iter().collect())
}

/// The stats of the whole scope.
pub async fn summary(app: &App, scope: &Scope) -> Result<Stats> {
    Ok(grouped(app, scope, Dim::None).await?.into_iter().next().map(|(_, s)| s).unwrap_or_default())
}

async fn read_statuses(app: &App, scope: &Scope, dim: Dim) -> Result<Vec<StatusRow>> {
    let sql = app.db.sql(&format!(
        "SELECT {} AS dim, status, CAST(SUM(calls) AS BIGINT) AS calls, \
         CAST(SUM(latency_us_sum) AS BIGINT) AS latency_us_sum, CAST(SUM(request_bytes) AS BIGINT) AS request_bytes, \
         CAST(SUM(response_bytes) AS BIGINT) AS response_bytes, CAST(SUM(cost_units) AS BIGINT) AS cost_units, \
         CAST(SUM(quota_units) AS BIGINT) AS quota_units FROM usage_rollups {} GROUP BY {}status",
        dim.column(),
        filter_sql(scope, dim),
        dim.group()
    ));
    let key = scope.key.clone().unwrap_or_default();
    Ok(with_conn!(app.db, c => {
        let q = diesel::sql_query(sql.as_str()).into_boxed()
            .bind::<Text, _>(scope.granularity.as_str())
            .bind::<Text, _>(scope.org.as_str())
            .bind::<BigInt, _>(scope.start)
            .bind::<BigInt, _>(scope.end);
        let q = if scope.key.is_some() { q.bind::<Text, _>(key.clone()) } else { q };
        q.load::<StatusRow>(c).await?
    }))
}

async fn read(app: &App, scope: &Scope, dim: Dim) -> Result<(Vec<StatusRow>, Vec<HistogramRow>)> {
    let rows = read_statuses(app, scope, dim).await?;
    let sql =
        app.db
            .sql(&format!("SELECT {} AS dim, histogram FROM usage_latency {}", dim.column(), filter_sql(scope, dim),));
    let key = scope.key.clone().unwrap_or_default();
    let bins = with_conn!(app.db, c => {
        let q = diesel::sql_query(sql.as_str()).into_boxed()
            .bind::<Text, _>(scope.granularity.as_str())
            .bind::<Text, _>(scope.org.as_str())
            .bind::<BigInt, _>(scope.start)
            .bind::<BigInt, _>(scope.end);
        let q = if scope.key.is_some() { q.bind::<Text, _>(key.clone()) } else { q };
        q.load::<HistogramRow>(c).await?
    });
    Ok((rows, bins))
}

/// One point per bucket of `[start, end)`, zeros included.
pub async fn history(app: &App, scope: &Scope) -> Result<Vec<(i64, Stats)>> {
    let step = scope.granularity.millis();
    let first = scope.start.div_euclid(step) * step;
    let points = (scope.end - first + step - 1).div_euclid(step);
    if points > 1000 {
        return Err(Error::bad_input("end", format!("at most 1000 points per answer (asked for {points})")));
    }
    let scope = Scope { start: first, ..scope.clone() };
    let mut by_bucket: std::collections::HashMap<i64, Stats> = grouped(app, &scope, Dim::Bucket)
        .await?
        .into_iter()
        .filter_map(|(b, s)| b.parse::<i64>().ok().map(|b| (b, s)))
        .collect();
    Ok((0..points).map(|i| first + i * step).map(|b| (b, by_bucket.remove(&b).unwrap_or_default())).collect())
}

/// Calls charged to the monthly quota per organization since `month_start` (daily roll-ups):
/// what the limiter's quota counters are reconciled from.
pub async fn quota_used_since(app: &App, month_start: i64) -> Result<Vec<(String, i64)>> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        org_id: String,
        #[diesel(sql_type = BigInt)]
        used: i64,
    }
    let sql = app.db.sql(
        "SELECT org_id, CAST(SUM(quota_units) AS BIGINT) AS used FROM usage_rollups \
         WHERE granularity = 'day' AND level = 3 AND bucket_start >= ? GROUP BY org_id",
    );
    let rows: Vec<Row> = with_conn!(app.db, c => {
        diesel::sql_query(sql.as_str()).bind::<BigInt, _>(month_start).load::<Row>(c).await?
    });
    Ok(rows.into_iter().filter(|r| r.used > 0).map(|r| (r.org_id, r.used)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::writer::latency_bin;

    #[test]
    fn percentiles_come_from_the_histogram_within_its_bound() {
        // 1..=1000 ms: p50 = 500 ms, p95 = 950 ms, p99 = 990 ms.
        let mut s = Stats::default();
        let mut bins = std::collections::BTreeMap::new();
        for ms in 1..=1000u64 {
            *bins.entry(latency_bin(ms * 1000)).or_insert(0i64) += 1;
        }
        s.bins = bins.into_iter().collect();
        for (p, exact) in [(50.0, 500.0), (95.0, 950.0), (99.0, 990.0)] {
            let got = s.percentile_ms(p).unwrap();
            assert!((got - exact).abs() / exact <= 0.025, "p{p}: {got} vs {exact}");
        }
        assert_eq!(Stats::default().percentile_ms(50.0), None);
    }
}
