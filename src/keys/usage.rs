//! Per-key usage counters (`lastUsedAt`, `lastUsedIp`, `totalRequests`, requests per day) kept in
//! memory and written in batches, so a request never waits on a database write. A flush runs on a
//! timer and at shutdown; a failed flush puts the counts back for the next one.

use std::collections::HashMap;
use std::net::IpAddr;

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use parking_lot::Mutex;

use super::model::UsageDayRow;
use crate::error::{Error, Result};
use crate::platform::db::Db;
use crate::platform::db::schema::{api_key_usage_daily, api_keys};
use crate::platform::ids::KeyId;
use crate::transaction;

#[derive(Debug, Clone, Default)]
struct Pending {
    requests: i64,
    last_used_at: i64,
    last_ip: Option<IpAddr>,
    /// Requests per UTC day, keyed by days since the epoch (formatted only when written).
    by_day: HashMap<i64, i64>,
}

#[derive(Default)]
pub struct KeyUsage {
    pending: Mutex<HashMap<KeyId, Pending>>,
    /// Held for a whole flush, so a flush that starts while another is writing waits for it: when
    /// `flush` returns, everything counted before the call is written (or back in `pending`).
    flushing: tokio::sync::Mutex<()>,
}

fn day_label(day: i64) -> String {
    chrono::DateTime::from_timestamp_millis(day * 86_400_000).unwrap_or_default().format("%Y-%m-%d").to_string()
}

impl KeyUsage {
    /// Counts one request by `key` at `now_ms` from `ip`. O(1), no I/O.
    pub fn record(&self, key: &KeyId, now_ms: i64, ip: Option<IpAddr>) {
        let mut map = self.pending.lock();
        if !map.contains_key(key) {
            map.insert(key.clone(), Pending::default());
        }
        let Some(p) = map.get_mut(key) else { return };
        p.requests += 1;
        if now_ms >= p.last_used_at {
            p.last_used_at = now_ms;
            if ip.is_some() {
                p.last_ip = ip;
            }
        }
        *p.by_day.entry(now_ms.div_euclid(86_400_000)).or_default() += 1;
    }

    /// Requests counted on this node and not yet written, for a key.
    pub fn unflushed(&self, key: &KeyId) -> (i64, Option<i64>) {
        self.pending.lock().get(key).map(|p| (p.requests, Some(p.last_used_at))).unwrap_or((0, None))
    }

    /// Writes every pending count in one transaction. Returns how many keys were written.
    pub async fn flush(&self, db: &Db) -> Result<usize> {
        let _one_at_a_time = self.flushing.lock().await;
        let batch: HashMap<KeyId, Pending> = std::mem::take(&mut *self.pending.lock());
        if batch.is_empty() {
            return Ok(0);
        }
        let n = batch.len();
        let result = write(db, &batch).await;
        if let Err(e) = &result {
            tracing::warn!(error = ?e, keys = n, "key usage flush failed; will retry");
            let mut map = self.pending.lock();
            for (key, p) in batch {
                let entry = map.entry(key).or_default();
                entry.requests += p.requests;
                if p.last_used_at > entry.last_used_at {
                    entry.last_used_at = p.last_used_at;
                    entry.last_ip = p.last_ip.or(entry.last_ip);
                }
                for (d, c) in p.by_day {
                    *entry.by_day.entry(d).or_default() += c;
                }
            }
        }
        result.map(|_| n)
    }
}

async fn write(db: &Db, batch: &HashMap<KeyId, Pending>) -> Result<()> {
    let days: Vec<UsageDayRow> = batch
        .iter()
        .flat_map(|(k, p)| {
            p.by_day.iter().map(|(d, c)| UsageDayRow { key_id: k.clone(), day: day_label(*d), requests: *c })
        })
        .collect();
    transaction!(db, c => {
        for (key, p) in batch {
            // A key deleted meanwhile simply updates nothing.
            diesel::update(api_keys::table.find(key))
                .set(api_keys::total_requests.eq(api_keys::total_requests + p.requests))
                .execute(c).await?;
            diesel::update(api_keys::table.find(key)
                    .filter(api_keys::last_used_at.is_null().or(api_keys::last_used_at.lt(p.last_used_at))))
                .set((api_keys::last_used_at.eq(p.last_used_at), api_keys::last_used_ip.eq(p.last_ip.map(|i| i.to_string()))))
                .execute(c).await?;
        }
        for row in &days {
            let exists: i64 = api_keys::table.find(&row.key_id).count().get_result(c).await?;
            if exists == 0 {
                continue;
            }
            diesel::insert_into(api_key_usage_daily::table)
                .values(row)
                .on_conflict((api_key_usage_daily::key_id, api_key_usage_daily::day))
                .do_update()
                .set(api_key_usage_daily::requests.eq(api_key_usage_daily::requests + excluded(api_key_usage_daily::requests)))
                .execute(c).await?;
        }
        Ok::<_, Error>(())
    })
}
