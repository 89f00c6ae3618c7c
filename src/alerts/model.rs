//! Diesel rows for alerts.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::platform::db::schema::alerts;
use crate::platform::ids::{AlertId, OrgId};

/// An alert as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = alerts)]
pub struct AlertRow {
    pub id: AlertId,
    pub org_id: OrgId,
    pub kind: String,
    pub severity: String,
    pub dedupe_key: String,
    pub title: String,
    pub data: String,
    pub occurrences: i64,
    pub triggered_at: i64,
    pub last_seen_at: i64,
    pub acknowledged_at: Option<i64>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<i64>,
}

impl AlertRow {
    pub fn status(&self) -> &'static str {
        match (self.resolved_at, self.acknowledged_at) {
            (Some(_), _) => "RESOLVED",
            (None, Some(_)) => "ACKNOWLEDGED",
            (None, None) => "OPEN",
        }
    }

    pub(super) fn payload(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id, "kind": self.kind, "severity": self.severity, "status": self.status(),
            "title": self.title, "data": serde_json::from_str::<serde_json::Value>(&self.data).unwrap_or_default(),
            "occurrences": self.occurrences,
        })
    }
}

#[derive(diesel::QueryableByName)]
pub(super) struct Upserted {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = BigInt)]
    pub occurrences: i64,
}
