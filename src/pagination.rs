//! Keyset pagination over time-ordered ids, newest first, shared by every list. Knows no GraphQL:
//! the GraphQL layer turns `first/after/last/before` into a `PageRequest` and a `Page` into a Relay
//! connection.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Error, Result};

pub const MAX_PAGE: i64 = 100;
pub const DEFAULT_PAGE: i64 = 20;

#[derive(Debug, Clone)]
pub struct PageRequest {
    /// Items older than this id (forward paging).
    pub after: Option<String>,
    /// Items newer than this id (backward paging).
    pub before: Option<String>,
    pub limit: i64,
    /// `last` was asked for: take from the newest end of the window backwards.
    pub from_end: bool,
}

pub fn encode_cursor(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("c:{id}"))
}

fn decode_cursor(field: &str, cursor: &str) -> Result<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("c:").map(str::to_string))
        .ok_or_else(|| Error::bad_input(field, "not a cursor from this API"))
}

impl PageRequest {
    /// Validates Relay arguments: `first` or `last` between 1 and 100 (default 20 forward).
    pub fn from_args(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Self> {
        if first.is_some() && last.is_some() {
            return Err(Error::bad_input("first", "pass `first` or `last`, not both"));
        }
        let check = |field: &str, n: i32| {
            if (1..=MAX_PAGE as i32).contains(&n) {
                Ok(n as i64)
            } else {
                Err(Error::bad_input(field, format!("must be between 1 and {MAX_PAGE}")))
            }
        };
        let (limit, from_end) = match (first, last) {
            (Some(n), _) => (check("first", n)?, false),
            (_, Some(n)) => (check("last", n)?, true),
            _ => (DEFAULT_PAGE, false),
        };
        Ok(Self {
            after: after.as_deref().map(|c| decode_cursor("after", c)).transpose()?,
            before: before.as_deref().map(|c| decode_cursor("before", c)).transpose()?,
            limit,
            from_end,
        })
    }
}

/// One page of rows in display order (newest first), with what Relay's `pageInfo` needs.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next: bool,
    pub has_previous: bool,
    pub total_count: i64,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` rows fetched in query order (descending for forward paging,
    /// ascending for backward paging).
    pub fn from_rows(mut rows: Vec<T>, req: &PageRequest, total_count: i64) -> Self {
        let more = rows.len() as i64 > req.limit;
        rows.truncate(req.limit as usize);
        if req.from_end {
            rows.reverse();
            Page { items: rows, has_next: req.before.is_some(), has_previous: more, total_count }
        } else {
            Page { items: rows, has_next: more, has_previous: req.after.is_some(), total_count }
        }
    }
}
