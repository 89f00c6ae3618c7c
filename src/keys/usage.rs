//! Writing the per-key usage counters (`keys::counters`) in batches, so a request never waits on a
//! database write. A flush runs on a timer and at shutdown; a failed flush puts the counts back for
//! the next one. An address a key had never been used from is audited and published as
//! `key.used_from_new_ip` in the flush's transaction (once, whichever node sees it first).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;

use super::counters::{Pending, day_label};
use super::model::{KeyRow, UsageDayRow};
use crate::app::App;
use crate::error::{Error, Result};
use crate::events::{NewAudit, PendingEvent};
use crate::platform::db::Db;
use crate::platform::db::schema::{api_key_ips, api_key_usage_daily, api_keys};
use crate::platform::ids::{KeyId, OrgId};
use crate::transaction;

/// Writes every pending count in one transaction, then publishes the new-address events it
/// raised. Returns how many keys were written; on an error the counts go back for the next flush.
pub async fn flush(app: &App) -> Result<usize> {
    let (_one_at_a_time, batch) = app.key_usage.take().await;
    if batch.is_empty() {
        return Ok(0);
    }
    let n = batch.len();
    let result = write(app, &app.db, &batch).await;
    if let Err(e) = &result {
        tracing::warn!(error = ?e, keys = n, "key usage flush failed; will retry");
        app.key_usage.restore(batch);
    }
    let raised = result?;
    for e in raised {
        e.publish(app).await;
    }
    Ok(n)
}

#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = diesel::sql_types::Text)]
    #[allow(dead_code)]
    ip: String,
}

/// Writes the batch; returns the `key.used_from_new_ip` events it wrote to the outbox.
async fn write(app: &App, db: &Db, batch: &HashMap<KeyId, Pending>) -> Result<Vec<PendingEvent>> {
    let insert_ip = db.sql(
        "INSERT INTO api_key_ips (key_id, ip, first_seen_at, last_seen_at, requests) \
         SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = ?) \
         ON CONFLICT (key_id, ip) DO NOTHING RETURNING ip",
    );
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
        let mut raised = Vec::new();
        for (key, p) in batch {
            for (ip, seen) in &p.ips {
                let ip_text = ip.to_string();
                // Inserted only if the key never used this address (on any node): then it is new.
                let inserted: Vec<Inserted> = diesel::sql_query(&insert_ip)
                    .bind::<diesel::sql_types::Text, _>(key.as_str())
                    .bind::<diesel::sql_types::Text, _>(&ip_text)
                    .bind::<diesel::sql_types::BigInt, _>(seen.first)
                    .bind::<diesel::sql_types::BigInt, _>(seen.last)
                    .bind::<diesel::sql_types::BigInt, _>(seen.requests)
                    .bind::<diesel::sql_types::Text, _>(key.as_str())
                    .load(c).await?;
                if inserted.is_empty() {
                    diesel::update(api_key_ips::table.find((key.as_str(), &ip_text)))
                        .set((
                            api_key_ips::requests.eq(api_key_ips::requests + seen.requests),
                            api_key_ips::last_seen_at.eq(seen.last),
                        ))
                        .filter(api_key_ips::last_seen_at.lt(seen.last))
                        .execute(c).await?;
                    continue;
                }
                let Some(row) = api_keys::table.find(key).select(KeyRow::as_select()).first(c).await.optional()? else {
                    continue;
                };
                let org: OrgId = row.org_id.clone();
                let mut data = super::service::event_data(&row);
                data["ip"] = serde_json::json!(ip_text);
                data["firstSeenAt"] = serde_json::json!(crate::platform::clock::rfc3339(seen.first));
                let event = crate::outbox!(
                    c,
                    PendingEvent::new(app, &org, "key.used_from_new_ip", data),
                    NewAudit::raw(app, &org, "api_key", key.as_str(), Some(*ip), "key.used_from_new_ip", "api_key", key.as_str(), serde_json::json!({ "ip": ip_text }))
                );
                raised.push(event);
            }
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
        Ok::<_, Error>(raised)
    })
}
