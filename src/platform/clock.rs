//! Time, injected. Services never read the system clock directly, so expiry, windows and retries
//! are tested by moving a manual clock instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

pub type SharedClock = Arc<dyn Clock>;

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start_ms: i64) -> Self {
        Self(AtomicI64::new(start_ms))
    }

    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn set_ms(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// RFC 3339 with millisecond precision, UTC (`2026-11-25T09:34:10.123Z`).
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 timestamp into epoch milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|d| d.timestamp_millis())
}

// UTC month arithmetic: quota months, billing periods, analytics periods.

/// Start of the UTC month `months` before the one holding `now_ms` (0 = this month).
pub fn month_start(now_ms: i64, months_back: i32) -> i64 {
    use chrono::Datelike;
    let now = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    let index = now.year() * 12 + now.month0() as i32 - months_back;
    chrono::NaiveDate::from_ymd_opt(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_millis())
        .unwrap_or(0)
}

/// `YYYY-MM` of an instant, UTC.
pub fn month_of(now_ms: i64) -> String {
    let m = month_index(now_ms);
    format!("{:04}-{:02}", m / 12, m % 12 + 1)
}

/// Months since year 0 of an instant, UTC (cheap: no formatting on the request path).
pub fn month_index(now_ms: i64) -> i32 {
    use chrono::Datelike;
    let d = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    d.year() * 12 + d.month0() as i32
}

/// Milliseconds until the next UTC month starts.
pub fn month_reset_ms(now_ms: i64) -> i64 {
    use chrono::Datelike;
    let now = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    let (y, m) = if now.month() == 12 { (now.year() + 1, 1) } else { (now.year(), now.month() + 1) };
    let next = chrono::NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_millis())
        .unwrap_or(now_ms);
    (next - now_ms).max(0)
}
