//! The operator's side of the event catalog: event types it defines (`event_types`), and
//! `publishEvent`, which validates a payload against its type's JSON Schema and writes it to the
//! outbox once per idempotency key.

use std::collections::HashSet;
use std::sync::Arc;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::RunQueryDsl;
use serde_json::Value;

use super::catalog;
use super::types::Publishable;
use super::{NewEvent, PendingEvent};
use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::pagination::{Page, PageRequest};
use crate::platform::bus::BusMessage;
use crate::platform::db::schema::{event_types, events, organizations};
use crate::platform::group_commit::GroupCommit;
use crate::platform::ids::{EventId, OrgId};
use crate::{find_in_org, keyset_page, transaction, with_conn};

const MAX_SCHEMA_BYTES: usize = 64 * 1024;
const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = event_types, treat_none_as_null = true)]
pub struct TypeRow {
    pub name: String,
    pub category: String,
    pub description: String,
    pub payload_schema: String,
    pub sample: String,
    pub deprecated: bool,
    pub archived_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One type of the catalog, built in or the operator's.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub name: String,
    pub category: String,
    pub description: String,
    pub schema: Value,
    pub sample: Value,
    pub deprecated: bool,
    pub archived_at: Option<i64>,
    pub built_in: bool,
}

impl From<&catalog::BuiltIn> for CatalogEntry {
    fn from(b: &catalog::BuiltIn) -> Self {
        Self {
            name: b.name.to_string(),
            category: b.category().to_string(),
            description: b.description.to_string(),
            schema: b.schema(),
            sample: b.sample(),
            deprecated: false,
            archived_at: None,
            built_in: true,
        }
    }
}

impl From<TypeRow> for CatalogEntry {
    fn from(r: TypeRow) -> Self {
        Self {
            schema: serde_json::from_str(&r.payload_schema).unwrap_or_default(),
            sample: serde_json::from_str(&r.sample).unwrap_or_default(),
            name: r.name,
            category: r.category,
            description: r.description,
            deprecated: r.deprecated,
            archived_at: r.archived_at,
            built_in: false,
        }
    }
}

/// Every type: Gantry's, then the operator's by name; archived ones only when asked.
pub async fn list_types(app: &App, include_archived: bool) -> Result<Vec<CatalogEntry>> {
    let rows: Vec<TypeRow> = with_conn!(app.db, c => {
        let mut q = event_types::table.select(TypeRow::as_select()).order(event_types::name.asc()).into_boxed();
        if !include_archived {
            q = q.filter(event_types::archived_at.is_null());
        }
        q.load(c).await?
    });
    Ok(catalog::BUILT_IN.iter().map(CatalogEntry::from).chain(rows.into_iter().map(CatalogEntry::from)).collect())
}

/// A type by name (archived ones included).
pub async fn find_type(app: &App, name: &str) -> Result<Option<CatalogEntry>> {
    if let Some(b) = catalog::built_in(name) {
        return Ok(Some(b.into()));
    }
    let row: Option<TypeRow> = with_conn!(app.db, c => {
        event_types::table.find(name).select(TypeRow::as_select()).first(c).await.optional()?
    });
    Ok(row.map(Into::into))
}

/// A type with its compiled schema, from this node's cache or read and compiled once.
async fn publishable(app: &App, name: &str) -> Result<Option<Arc<Publishable>>> {
    if let Some(t) = app.event_types.get(name) {
        return Ok(Some(t));
    }
    let generation = app.event_types.generation();
    let Some(entry) = find_type(app, name).await? else { return Ok(None) };
    let validator = compile(&entry.schema)?;
    let t = Arc::new(Publishable { entry, validator });
    app.event_types.store(generation, name, t.clone());
    Ok(Some(t))
}

/// After a type changed: every node reads it again.
async fn types_changed(app: &App) {
    app.event_types.forget_all();
    app.bus.publish(BusMessage::InvalidateEventTypes).await;
}

fn require_operator(principal: &Principal) -> Result<()> {
    principal.require_scope("events:publish")?;
    if principal.is_platform {
        Ok(())
    } else {
        Err(Error::forbidden("only the platform operator (an administrator or a service key) manages event types"))
    }
}

fn check_type_name(name: &str) -> Result<String> {
    let bad = |m: &str| Error::bad_input("name", m);
    if name.len() > 100 || !name.contains('.') || name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return Err(bad("must be `category.action` (at most 100 characters)"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
        return Err(bad("may contain only letters, digits, `_` and `.`"));
    }
    if catalog::built_in(name).is_some() {
        return Err(Error::Conflict(format!("`{name}` is one of Gantry's own event types")));
    }
    Ok(name.to_string())
}

/// Compiles a JSON Schema, or says why it is not one.
fn compile(schema: &Value) -> Result<jsonschema::Validator> {
    if !schema.is_object() || schema.to_string().len() > MAX_SCHEMA_BYTES {
        return Err(Error::bad_input("schema", "must be a JSON Schema object of at most 64 KiB"));
    }
    jsonschema::validator_for(schema).map_err(|e| Error::bad_input("schema", format!("not a valid JSON Schema: {e}")))
}

fn check_against(validator: &jsonschema::Validator, field: &str, value: &Value) -> Result<()> {
    validator.validate(value).map_err(|e| {
        let at = e.instance_path().to_string();
        let at = if at.is_empty() { "the root".to_string() } else { format!("`{at}`") };
        Error::bad_input(field, format!("does not match the type's schema at {at}: {e}"))
    })
}

/// A new or changed operator type.
#[derive(Debug, Default)]
pub struct TypeInput {
    pub description: Option<String>,
    pub schema: Option<Value>,
    pub sample: Option<Value>,
    pub deprecated: Option<bool>,
}

pub async fn create_type(app: &App, principal: &Principal, name: &str, input: TypeInput) -> Result<CatalogEntry> {
    require_operator(principal)?;
    let name = check_type_name(name)?;
    let description = input.description.unwrap_or_default();
    if description.chars().count() > 1000 {
        return Err(Error::bad_input("description", "at most 1000 characters"));
    }
    let schema = input.schema.unwrap_or_else(|| serde_json::json!({ "type": "object" }));
    let validator = compile(&schema)?;
    let sample = input.sample.unwrap_or_else(|| serde_json::json!({}));
    check_against(&validator, "sample", &sample)?;
    let now = app.clock.now_ms();
    let row = TypeRow {
        category: name.split('.').next().unwrap_or_default().to_string(),
        name: name.clone(),
        description,
        payload_schema: schema.to_string(),
        sample: sample.to_string(),
        deprecated: input.deprecated.unwrap_or(false),
        archived_at: None,
        created_at: now,
        updated_at: now,
    };
    let inserted = with_conn!(app.db, c => {
        diesel::insert_into(event_types::table).values(&row).on_conflict_do_nothing().execute(c).await?
    });
    if inserted == 0 {
        return Err(Error::Conflict(format!("an event type named `{name}` exists")));
    }
    types_changed(app).await;
    Ok(row.into())
}

/// Changes an operator type; a new schema must accept the (new or current) sample.
pub async fn update_type(app: &App, principal: &Principal, name: &str, input: TypeInput) -> Result<CatalogEntry> {
    require_operator(principal)?;
    if catalog::built_in(name).is_some() {
        return Err(Error::forbidden("Gantry's own event types cannot be changed"));
    }
    let now = app.clock.now_ms();
    let row = transaction!(app.db, c => {
        let mut row: TypeRow = event_types::table.find(name).select(TypeRow::as_select()).first(c).await.optional()?
            .ok_or(Error::NotFound("event type"))?;
        if let Some(d) = input.description {
            if d.chars().count() > 1000 {
                return Err(Error::bad_input("description", "at most 1000 characters"));
            }
            row.description = d;
        }
        let schema = match input.schema { Some(s) => s, None => serde_json::from_str(&row.payload_schema).unwrap_or_default() };
        let sample = match input.sample { Some(s) => s, None => serde_json::from_str(&row.sample).unwrap_or_default() };
        check_against(&compile(&schema)?, "sample", &sample)?;
        row.payload_schema = schema.to_string();
        row.sample = sample.to_string();
        if let Some(d) = input.deprecated {
            row.deprecated = d;
        }
        row.updated_at = now;
        diesel::update(event_types::table.find(name)).set(&row).execute(c).await?;
        Ok::<_, Error>(row)
    })?;
    types_changed(app).await;
    Ok(row.into())
}

/// Archives an operator type: it can no longer be published; endpoints filtering on it keep
/// their filter, and events already published are still delivered.
pub async fn archive_type(app: &App, principal: &Principal, name: &str) -> Result<CatalogEntry> {
    require_operator(principal)?;
    if catalog::built_in(name).is_some() {
        return Err(Error::forbidden("Gantry's own event types cannot be archived"));
    }
    let now = app.clock.now_ms();
    let row: Option<TypeRow> = with_conn!(app.db, c => {
        diesel::update(event_types::table.find(name))
            .set((event_types::archived_at.eq(now), event_types::updated_at.eq(now)))
            .returning(TypeRow::as_returning())
            .get_result(c).await.optional()?
    });
    let row = row.ok_or(Error::NotFound("event type"))?;
    types_changed(app).await;
    Ok(row.into())
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub id: EventId,
    pub org_id: OrgId,
    pub event_type: String,
    pub payload: String,
    pub idempotency_key: Option<String>,
    pub created_at: i64,
}

/// What `publishEvent` is given.
#[derive(Debug)]
pub struct Publish {
    pub event_type: String,
    pub payload: Value,
    pub idempotency_key: Option<String>,
    /// The organization to publish to: a service key or platform administrator names it; anyone
    /// else publishes to their own.
    pub organization_id: Option<String>,
}

/// Publishes an operator event. Returns the event and whether it was published before under the
/// same idempotency key (then nothing new is written and the first event is returned).
pub async fn publish(app: &App, principal: &Principal, input: Publish) -> Result<(EventRow, bool)> {
    principal.require_scope("events:publish")?;
    let org: OrgId = match input.organization_id.as_deref() {
        None => principal.org_id.clone(),
        Some(id) if id == principal.org_id.as_str() => principal.org_id.clone(),
        Some(id) => {
            if !principal.is_platform {
                return Err(Error::forbidden(
                    "only a service key or a platform administrator publishes to another organization",
                ));
            }
            let org: OrgId = id.parse().map_err(|_| Error::NotFound("organization"))?;
            let exists: i64 = with_conn!(app.db, c => {
                organizations::table.find(&org).count().get_result(c).await?
            });
            if exists == 0 {
                return Err(Error::NotFound("organization"));
            }
            org
        }
    };
    if let Some(k) = &input.idempotency_key
        && (k.is_empty() || k.chars().count() > 255)
    {
        return Err(Error::bad_input("idempotencyKey", "1 to 255 characters"));
    }
    let publishable = publishable(app, &input.event_type).await?.ok_or_else(|| {
        Error::bad_input("type", format!("`{}` is not an event type of the catalog", input.event_type))
    })?;
    let entry = &publishable.entry;
    if entry.built_in {
        return Err(Error::bad_input(
            "type",
            format!("`{}` is raised by Gantry itself and cannot be published", entry.name),
        ));
    }
    if entry.archived_at.is_some() {
        return Err(Error::bad_input("type", format!("`{}` is archived", entry.name)));
    }
    if input.payload.to_string().len() > MAX_PAYLOAD_BYTES {
        return Err(Error::bad_input("payload", "at most 256 KiB"));
    }
    check_against(&publishable.validator, "payload", &input.payload)?;

    let find_existing = async |key: &str| -> Result<Option<EventRow>> {
        Ok(with_conn!(app.db, c => {
            events::table
                .filter(events::org_id.eq(org.as_str()))
                .filter(events::idempotency_key.eq(key))
                .select(EventRow::as_select())
                .first(c).await.optional()?
        }))
    };
    if let Some(key) = &input.idempotency_key
        && let Some(first) = find_existing(key).await?
    {
        return Ok((first, true));
    }
    let mut event = PendingEvent::new(app, &org, &entry.name, input.payload);
    event.row.idempotency_key = input.idempotency_key.clone();
    let row = EventRow {
        id: event.row.id.clone(),
        org_id: event.row.org_id.clone(),
        event_type: event.row.event_type.clone(),
        payload: event.row.payload.clone(),
        idempotency_key: event.row.idempotency_key.clone(),
        created_at: event.row.created_at,
    };
    let PendingEvent { row: new_row, envelope } = event;
    let inserted = app
        .published
        .submit(new_row, |batch| write_published(app, batch))
        .await
        .map_err(|_| Error::internal(anyhow::anyhow!("a batch of published events was abandoned")))??;
    if !inserted {
        // A concurrent publish with the same key won the race: return its event.
        let key = input.idempotency_key.as_deref().unwrap_or_default();
        let first =
            find_existing(key).await?.ok_or_else(|| Error::internal(anyhow::anyhow!("idempotent event vanished")))?;
        return Ok((first, true));
    }
    super::announce(app, envelope).await;
    Ok((row, false))
}

/// Published events waiting to be written together (group commit): one statement and one commit
/// for every event published meanwhile, each publisher answered once its own row is written.
pub type PublishQueue = GroupCommit<NewEvent, Result<bool>>;

/// Rows per statement (six placeholders each, well under either backend's limit).
const PUBLISH_CHUNK: usize = 500;

/// Writes a batch of published events; per event, whether it was written (`false`: another
/// publish with its idempotency key was first). A batch that fails is written again one event
/// at a time, so one bad row fails alone.
async fn write_published(app: &App, batch: Vec<NewEvent>) -> Vec<Result<bool>> {
    let mut written = HashSet::new();
    let mut failed = false;
    for chunk in batch.chunks(PUBLISH_CHUNK) {
        match insert_events(app, chunk).await {
            Ok(ids) => written.extend(ids),
            Err(e) if batch.len() == 1 => return vec![Err(e)],
            Err(_) => failed = true,
        }
    }
    if !failed {
        return batch.iter().map(|e| Ok(written.contains(e.id.as_str()))).collect();
    }
    let mut out = Vec::with_capacity(batch.len());
    for e in batch.chunks(1) {
        out.push(if written.contains(e[0].id.as_str()) {
            Ok(true)
        } else {
            insert_events(app, e).await.map(|ids| !ids.is_empty())
        });
    }
    out
}

#[derive(QueryableByName)]
struct InsertedId {
    #[diesel(sql_type = Text)]
    id: String,
}

/// One multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING id`: the ids of the rows written.
async fn insert_events(app: &App, rows: &[NewEvent]) -> Result<Vec<String>> {
    let mut sql =
        String::from("INSERT INTO events (id, org_id, event_type, payload, idempotency_key, created_at) VALUES ");
    sql.push_str(&crate::platform::db::Db::rows(rows.len(), "(?, ?, ?, ?, ?, ?)"));
    sql.push_str(" ON CONFLICT DO NOTHING RETURNING id");
    let sql = app.db.sql(&sql);
    let ids: Vec<InsertedId> = with_conn!(app.db, c => {
        let mut q = diesel::sql_query(&sql).into_boxed();
        for r in rows {
            q = q
                .bind::<Text, _>(&r.id)
                .bind::<Text, _>(&r.org_id)
                .bind::<Text, _>(&r.event_type)
                .bind::<Text, _>(&r.payload)
                .bind::<Nullable<Text>, _>(&r.idempotency_key)
                .bind::<BigInt, _>(r.created_at);
        }
        q.load(c).await?
    });
    Ok(ids.into_iter().map(|r| r.id).collect())
}

/// Filters for the organization's events.
#[derive(Debug, Default)]
pub struct EventFilter {
    pub types: Vec<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// One event of the caller's organization (test events included: a test delivery names its event).
pub async fn get_event(app: &App, principal: &Principal, id: &str) -> Result<EventRow> {
    principal.require_scope("org:read")?;
    find_in_org!(app.db, principal.org_id.as_str(), events, EventRow, EventId, id, "event")
}

/// The organization's events, newest first. Type filters are exact names or `category.*`.
pub async fn list_events(
    app: &App,
    principal: &Principal,
    filter: &EventFilter,
    page: &PageRequest,
) -> Result<Page<EventRow>> {
    principal.require_scope("org:read")?;
    super::filters::check_filters("types", &filter.types)?;
    let exact: Vec<&str> = filter.types.iter().filter(|f| !f.ends_with('*')).map(String::as_str).collect();
    let prefixes: Vec<String> = filter.types.iter().filter_map(|f| f.strip_suffix('*')).map(str::to_string).collect();
    let all = filter.types.is_empty() || filter.types.iter().any(|f| f == "*");
    let org = principal.org_id.as_str();
    macro_rules! base {
        () => {{
            let mut q = events::table.filter(events::org_id.eq(org)).filter(events::is_test.eq(false)).into_boxed();
            if !all {
                let mut cond: Box<dyn BoxableExpression<events::table, _, SqlType = diesel::sql_types::Bool>> =
                    Box::new(events::event_type.eq_any(exact.clone()));
                // `category.` prefixes compared exactly (LIKE ignores case on SQLite, not on PostgreSQL).
                for p in &prefixes {
                    cond = Box::new(
                        cond.or(diesel::dsl::sql::<diesel::sql_types::Bool>("substr(event_type, 1, ")
                            .bind::<diesel::sql_types::Integer, _>(p.len() as i32)
                            .sql(") = ")
                            .bind::<diesel::sql_types::Text, _>(p.clone())),
                    );
                }
                q = q.filter(cond);
            }
            if let Some(t) = filter.since {
                q = q.filter(events::created_at.ge(t));
            }
            if let Some(t) = filter.until {
                q = q.filter(events::created_at.lt(t));
            }
            q
        }};
    }
    let (rows, total) = with_conn!(app.db, c => keyset_page!(c, base!(), events::id, EventRow, page));
    Ok(Page::from_rows(rows, page, total))
}
