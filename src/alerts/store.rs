//! Storing alerts: a trigger becomes a new alert (with its `alert.triggered` event, and the
//! trigger's own event) or a repeat of an active one; resolving writes `alert.resolved`. Events go
//! to the outbox in the same transaction and to the bus after commit.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;

use super::model::{AlertRow, Upserted};
use super::{RESOLVED_EVENT, TRIGGERED_EVENT, Trigger};
use crate::app::App;
use crate::error::{Error, Result};
use crate::events::PendingEvent;
use crate::platform::db::schema::alerts;
use crate::platform::ids::AlertId;
use crate::transaction;

/// How long a trigger that cannot be stored is tried again before it is dropped (logged).
const GIVE_UP_AFTER_MS: i64 = 10 * 60_000;

/// Stores every queued trigger, oldest first. On an error the trigger is held for the next
/// drain (for up to [`GIVE_UP_AFTER_MS`]) and the error returned.
pub async fn drain(app: &App) -> Result<usize> {
    let mut q = app.notices.queue().await;
    let mut n = 0;
    loop {
        let now = app.clock.now_ms();
        let Some((t, since)) = q.next(now) else { return Ok(n) };
        if let Err(e) = raise(app, t.clone(), now).await {
            if now - since < GIVE_UP_AFTER_MS {
                q.hold(t, since);
            } else {
                tracing::error!(org = %t.org_id, title = %t.title, "an alert trigger could not be stored for 10 minutes; dropped");
            }
            return Err(e);
        }
        n += 1;
    }
}

/// Stores a trigger: a new alert (with its events), or a repeat of an active one.
pub async fn raise(app: &App, t: Trigger, now: i64) -> Result<()> {
    let Some(kind) = t.kind else {
        if let Some(event) = t.event {
            let e = PendingEvent::new(app, &t.org_id, event, t.data);
            let e = transaction!(app.db, c => Ok::<_, Error>(crate::outbox!(c, e)))?;
            e.publish(app).await;
        }
        return Ok(());
    };
    let sql = app.db.sql(
        "INSERT INTO alerts (id, org_id, kind, severity, dedupe_key, title, data, occurrences, triggered_at, last_seen_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?) \
         ON CONFLICT (org_id, dedupe_key) WHERE resolved_at IS NULL \
         DO UPDATE SET occurrences = alerts.occurrences + 1, last_seen_at = excluded.last_seen_at \
         RETURNING id, occurrences",
    );
    let id = AlertId::generate(now).to_string();
    let data = t.data.to_string();
    let mut published = Vec::new();
    transaction!(app.db, c => {
        let up: Upserted = diesel::sql_query(sql.as_str())
            .bind::<Text, _>(&id)
            .bind::<Text, _>(t.org_id.as_str())
            .bind::<Text, _>(kind)
            .bind::<Text, _>(t.severity)
            .bind::<Text, _>(&t.dedupe_key)
            .bind::<Text, _>(&t.title)
            .bind::<Text, _>(&data)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(now)
            .get_result(c).await?;
        if up.occurrences == 1 {
            let row: AlertRow = alerts::table.find(&up.id).select(AlertRow::as_select()).first(c).await?;
            let mut pending = vec![PendingEvent::new(app, &t.org_id, TRIGGERED_EVENT, row.payload())];
            if let Some(event) = t.event {
                pending.push(PendingEvent::new(app, &t.org_id, event, t.data.clone()));
            }
            for e in pending {
                published.push(crate::outbox!(c, e));
            }
        }
        Ok::<_, Error>(())
    })?;
    for e in published {
        e.publish(app).await;
    }
    Ok(())
}

/// Resolves an active alert (with its `alert.resolved` event).
pub(super) async fn resolve(app: &App, row: AlertRow, now: i64) -> Result<()> {
    let resolved = transaction!(app.db, c => {
        let n = diesel::update(alerts::table.find(&row.id).filter(alerts::resolved_at.is_null()))
            .set(alerts::resolved_at.eq(now))
            .execute(c).await?;
        if n == 0 {
            return Ok::<_, Error>(None);
        }
        let row = AlertRow { resolved_at: Some(now), ..row.clone() };
        let org = row.org_id.clone();
        Ok(Some(crate::outbox!(c, PendingEvent::new(app, &org, RESOLVED_EVENT, row.payload()))))
    })?;
    if let Some(e) = resolved {
        e.publish(app).await;
    }
    Ok(())
}
