//! Request logs: the raw usage records — one per call, as metered — newest first, read from the
//! organization's segments (see the `usage_segments` migration for their layout). Kept as long as
//! usage retention keeps them (`usage_retention_days`).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::app::App;
use crate::error::{Error, Result};
use crate::platform::db::schema::usage_segments;
use crate::platform::ids::OrgId;
use crate::with_conn;

/// Segments read per page: a segment is one writer batch of the organization's calls.
const SEGMENTS_PER_READ: i64 = 200;

/// One call.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// Where it is in the log (see [`Cursor`]).
    pub cursor: Cursor,
    pub occurred_at: i64,
    pub api_key_id: Option<String>,
    pub source: String,
    pub operation: String,
    pub status: i32,
    pub latency_us: i64,
    pub request_bytes: i64,
    pub response_bytes: i64,
}

/// A call's place in the log, newest first: its time, then the writer batch (segment, whose ids
/// are time-ordered) and its index there — calls of the same millisecond keep an order, so a
/// page that ends among them continues exactly after the last one seen.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub at: i64,
    pub segment: String,
    pub index: usize,
}

impl Cursor {
    /// The opaque form clients pass back: `{at}.{segment}.{index}`.
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.at, self.segment, self.index)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (at, rest) = text.split_once('.')?;
        let (segment, index) = rest.rsplit_once('.')?;
        if segment.is_empty() || segment.len() > 64 {
            return None;
        }
        Some(Cursor { at: at.parse().ok()?, segment: segment.to_string(), index: index.parse().ok()? })
    }
}

pub struct LogFilter {
    /// Only calls older than this one (the `cursor` of the last call of the previous page).
    pub after: Option<Cursor>,
    /// Only calls before this instant (epoch ms).
    pub before: Option<i64>,
    pub since: Option<i64>,
    pub key_id: Option<String>,
    pub status: Option<i32>,
    pub limit: usize,
}

/// The organization's calls, newest first.
pub async fn recent(app: &App, org: &OrgId, f: &LogFilter) -> Result<Vec<LogEntry>> {
    // After a cursor: its millisecond still counts (calls of it older than the cursor's).
    let before = f.before.unwrap_or(i64::MAX).min(f.after.as_ref().map_or(i64::MAX, |c| c.at.saturating_add(1)));
    let since = f.since.unwrap_or(0);
    if since >= before {
        return Err(Error::bad_input("since", "must be before `before`"));
    }
    let org = org.as_str().to_string();
    // Segments overlap in time (writers on several nodes): read every segment that may hold a
    // call in the window, newest first, a bounded number at a time.
    let rows: Vec<(String, String)> = with_conn!(app.db, c => {
        usage_segments::table
            .filter(usage_segments::org_id.eq(&org))
            .filter(usage_segments::first_at.lt(before))
            .filter(usage_segments::last_at.ge(since))
            .order(usage_segments::last_at.desc())
            .select((usage_segments::id, usage_segments::records))
            .limit(SEGMENTS_PER_READ)
            .load::<(String, String)>(c)
            .await?
    });
    // Calls in the same millisecond keep the order they were metered in: segment ids are
    // time-ordered, and a segment lists its calls in order.
    let mut out: Vec<LogEntry> = Vec::new();
    for (segment, text) in rows {
        let Ok(records) = serde_json::from_str::<Vec<serde_json::Value>>(&text) else { continue };
        for (i, r) in records.into_iter().enumerate() {
            let Some(a) = r.as_array().filter(|a| a.len() >= 10) else { continue };
            let num = |i: usize| a[i].as_i64().unwrap_or(0);
            let at = num(9);
            if at >= before || at < since {
                continue;
            }
            let key = a[0].as_str().filter(|k| !k.is_empty()).map(str::to_string);
            if f.key_id.as_ref().is_some_and(|k| key.as_ref() != Some(k)) {
                continue;
            }
            let status = num(3) as i32;
            if f.status.is_some_and(|s| s != status) {
                continue;
            }
            let cursor = Cursor { at, segment: segment.clone(), index: i };
            if f.after.as_ref().is_some_and(|after| &cursor >= after) {
                continue;
            }
            out.push(LogEntry {
                cursor,
                occurred_at: at,
                api_key_id: key,
                source: a[1].as_str().unwrap_or("").to_string(),
                operation: a[2].as_str().unwrap_or("").to_string(),
                status,
                latency_us: num(4),
                request_bytes: num(5),
                response_bytes: num(6),
            });
        }
    }
    out.sort_by(|a, b| b.cursor.cmp(&a.cursor));
    out.truncate(f.limit);
    Ok(out)
}
