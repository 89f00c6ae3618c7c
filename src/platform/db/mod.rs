//! Database access for both backends through one code path.
//!
//! `Db` is an enum of deadpool pools — PostgreSQL through `AsyncPgConnection`, SQLite through
//! `SyncConnectionWrapper<SqliteConnection>` — and the [`with_conn!`](crate::with_conn) and
//! [`transaction!`](crate::transaction) macros expand one query body once per backend, so each
//! expansion is type-checked against its backend. Backend-specific SQL is an explicit `match` in
//! the one function that needs it. Write transactions on SQLite are `BEGIN IMMEDIATE`, so lock
//! upgrades never fail with `SQLITE_BUSY`; the busy timeout queues writers instead.

pub mod schema;

use std::path::Path;

use diesel::SqliteConnection;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, deadpool};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;
pub type PoolError = deadpool::PoolError;

pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// A pool of connections to one of the two backends. Cheap to clone.
#[derive(Clone)]
pub enum Db {
    Pg(deadpool::Pool<AsyncPgConnection>),
    Sqlite(deadpool::Pool<SqliteConn>),
}

/// A pooled connection, returned to the pool on drop.
#[allow(
    clippy::large_enum_variant,
    reason = "one per checkout, on the stack for a query: boxing would add an allocation to every query"
)]
pub enum Conn {
    Pg(deadpool::Object<AsyncPgConnection>),
    Sqlite(deadpool::Object<SqliteConn>),
}

/// Inside `transaction!`: when `$pg`, locks one row by id (`SELECT 1 … FOR UPDATE`) until the
/// transaction ends, so reading it and writing it back cannot lose a concurrent write. SQLite
/// needs nothing: its transactions take the single writer lock when they begin.
#[macro_export]
macro_rules! lock_row {
    ($c:expr, $pg:expr, $table:literal, $id:expr) => {
        if $pg {
            diesel::sql_query(concat!("SELECT 1 FROM ", $table, " WHERE id = $1 FOR UPDATE"))
                .bind::<diesel::sql_types::Text, _>($id)
                .execute($c)
                .await?;
        }
    };
}

/// Inside `with_conn!`: one keyset page (`crate::pagination`) of `$base` — a boxed query with its
/// filters applied, given as an expression that is evaluated twice (count, then rows) — ordered
/// by the time-ordered `$id`, newest first. Evaluates to `(rows, total_count)`.
#[macro_export]
macro_rules! keyset_page {
    ($c:expr, $base:expr, $id:expr, $row:ty, $page:expr) => {{
        let page: &$crate::pagination::PageRequest = $page;
        let total: i64 = $base.count().get_result($c).await?;
        let mut q = $base.select(<$row>::as_select()).limit(page.limit + 1);
        if let Some(after) = &page.after {
            q = q.filter($id.lt(after));
        }
        if let Some(before) = &page.before {
            q = q.filter($id.gt(before));
        }
        q = if page.from_end { q.order($id.asc()) } else { q.order($id.desc()) };
        let rows: Vec<$row> = q.load($c).await?;
        (rows, total)
    }};
}

/// Loads one row of an organization's `$table` by its prefixed id, as `$row`; an id that is
/// malformed, unknown or of another organization is the same `NotFound($what)`. Evaluates to
/// `Result<$row>`.
#[macro_export]
macro_rules! find_in_org {
    ($db:expr, $org:expr, $table:ident, $row:ty, $id_ty:ty, $id:expr, $what:literal) => {
        async {
            let id: $id_ty = $id.parse().map_err(|_| $crate::error::Error::NotFound($what))?;
            let org: &str = $org;
            let row: Option<$row> = $crate::with_conn!($db, c => {
                $table::table
                    .find(id.as_str())
                    .filter($table::org_id.eq(org))
                    .select(<$row>::as_select())
                    .first(c).await.optional()?
            });
            row.ok_or($crate::error::Error::NotFound($what))
        }
        .await
    };
}

/// Statement settings for the queries that read the head of a queue (`ORDER BY … LIMIT n` on a
/// partial index: the outbox, due webhook deliveries), run first in their transaction on
/// PostgreSQL. After a burst of inserts the table's statistics still describe it as nearly empty
/// until autovacuum analyzes it, and the planner then reads every queued row through a bitmap scan
/// and sorts them, to return `n`: milliseconds per call on a backlog. The ordered index scan stops
/// after `n` rows whatever the statistics say.
pub const QUEUE_HEAD_PLAN: &str = "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off";

/// Runs `$body` with `$c` bound to `&mut` the backend's connection; the body is expanded once per
/// backend. Needs a caller whose error type converts from `PoolError`.
#[macro_export]
macro_rules! with_conn {
    ($db:expr, $c:ident => $body:expr) => {{
        match $db.get().await? {
            $crate::platform::db::Conn::Pg(mut __obj) => {
                let $c: &mut diesel_async::AsyncPgConnection = &mut *__obj;
                $body
            }
            $crate::platform::db::Conn::Sqlite(mut __obj) => {
                let $c: &mut $crate::platform::db::SqliteConn = &mut *__obj;
                $body
            }
        }
    }};
}

/// Runs `$body` (which returns `Result<_, crate::Error>`) in one transaction: `BEGIN` on
/// PostgreSQL, `BEGIN IMMEDIATE` on SQLite. An `Err` rolls everything back.
#[macro_export]
macro_rules! transaction {
    ($db:expr, $c:ident => $body:expr) => {{
        match $db.get().await? {
            $crate::platform::db::Conn::Pg(mut __obj) => {
                use diesel_async::AsyncConnection as _;
                let __conn: &mut diesel_async::AsyncPgConnection = &mut *__obj;
                __conn.transaction(async |$c| $body).await
            }
            $crate::platform::db::Conn::Sqlite(mut __obj) => {
                let __conn: &mut $crate::platform::db::SqliteConn = &mut *__obj;
                __conn.immediate_transaction(async |$c| $body).await
            }
        }
    }};
}

impl Db {
    /// Raw SQL written with `?` placeholders, in the backend's own placeholder style (`$1`, `$2`, …
    /// on PostgreSQL). For the few queries the query builder cannot express portably.
    pub fn sql(&self, text: &str) -> String {
        match self {
            Db::Sqlite(_) => text.to_string(),
            Db::Pg(_) => {
                let mut out = String::with_capacity(text.len() + 16);
                let mut n = 0;
                for ch in text.chars() {
                    if ch == '?' {
                        n += 1;
                        out.push('$');
                        out.push_str(&n.to_string());
                    } else {
                        out.push(ch);
                    }
                }
                out
            }
        }
    }

    /// `VALUES` rows of a multi-row insert: `row` (e.g. `(?, ?, ?)`) `n` times, comma-separated.
    pub fn rows(n: usize, row: &str) -> String {
        vec![row; n].join(", ")
    }

    /// Connects to `url` (`postgres://…`, or a SQLite file path / `sqlite://PATH`).
    /// `timeout_secs` bounds each PostgreSQL statement and each wait for SQLite's write lock.
    pub async fn connect(url: &str, pool_size: usize, timeout_secs: u64) -> anyhow::Result<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut config = ManagerConfig::<AsyncPgConnection>::default();
            // A pooled connection is checked by its broken flag (set on a connection error), not by
            // a `SELECT 1` round trip on every checkout (deadpool-postgres's default too).
            config.recycling_method = diesel_async::pooled_connection::RecyclingMethod::Fast;
            config.custom_setup = Box::new(move |url| {
                Box::pin(async move {
                    let mut conn = AsyncPgConnection::establish(url).await?;
                    conn.batch_execute(&format!("SET statement_timeout = {}", timeout_secs * 1000))
                        .await
                        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                    Ok(conn)
                })
            });
            let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
            let pool = deadpool::Pool::builder(manager).max_size(pool_size).build()?;
            let db = Db::Pg(pool);
            db.get().await.map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL: {e}"))?;
            Ok(db)
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url).to_string();
            if let Some(parent) = Path::new(&path).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)?;
            }
            let mut config = ManagerConfig::<SqliteConn>::default();
            config.recycling_method = diesel_async::pooled_connection::RecyclingMethod::Fast;
            config.custom_setup = Box::new(move |url| {
                Box::pin(async move {
                    let mut conn = SqliteConn::establish(url).await?;
                    conn.batch_execute(&format!(
                        "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = {}; \
                         PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                        timeout_secs * 1000
                    ))
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                    Ok(conn)
                })
            });
            let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path, config);
            let pool = deadpool::Pool::builder(manager).max_size(pool_size).build()?;
            let db = Db::Sqlite(pool);
            db.get().await.map_err(|e| anyhow::anyhow!("cannot open SQLite database: {e}"))?;
            Ok(db)
        }
    }

    pub async fn get(&self) -> Result<Conn, PoolError> {
        Ok(match self {
            Db::Pg(p) => Conn::Pg(p.get().await?),
            Db::Sqlite(p) => Conn::Sqlite(p.get().await?),
        })
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Pg(_))
    }

    /// The pool now: (connections open, of which idle, callers waiting for one, the most it opens).
    pub fn pool_status(&self) -> (usize, usize, usize, usize) {
        let s = match self {
            Db::Pg(p) => p.status(),
            Db::Sqlite(p) => p.status(),
        };
        (s.size, s.available, s.waiting, s.max_size)
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Db::Pg(_) => "postgres",
            Db::Sqlite(_) => "sqlite",
        }
    }

    /// Applies pending migrations. On PostgreSQL an advisory lock makes concurrent starts of
    /// several nodes safe.
    pub async fn migrate(&self) -> anyhow::Result<usize> {
        let applied = match self.get().await? {
            Conn::Pg(mut conn) => {
                conn.batch_execute("SELECT pg_advisory_lock(7261626)").await?;
                let mut harness = AsyncMigrationHarness::new(conn);
                let result = harness.run_pending_migrations(PG_MIGRATIONS).map(|v| v.len());
                let mut conn = harness.into_inner();
                conn.batch_execute("SELECT pg_advisory_unlock(7261626)").await?;
                result
            }
            Conn::Sqlite(conn) => {
                let mut harness = AsyncMigrationHarness::new(conn);
                harness.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len())
            }
        };
        applied.map_err(|e| anyhow::anyhow!("migration failed: {e}"))
    }

    /// A trivial round trip, for `/readyz`.
    pub async fn ping(&self) -> anyhow::Result<()> {
        use diesel::sql_types::Integer;
        #[derive(diesel::QueryableByName)]
        struct One {
            #[diesel(sql_type = Integer)]
            #[allow(dead_code)]
            one: i32,
        }
        match self.get().await? {
            Conn::Pg(mut c) => {
                diesel::sql_query("SELECT 1 AS one").get_result::<One>(&mut *c).await?;
            }
            Conn::Sqlite(mut c) => {
                diesel::sql_query("SELECT 1 AS one").get_result::<One>(&mut *c).await?;
            }
        }
        Ok(())
    }

    /// `(table, column, portable type, nullable)` for every application table, sorted — used by
    /// the test that keeps the two migration trees identical. SQLite's full-text tables (`fts_*`,
    /// FTS5 and its shadow tables) are left out: PostgreSQL indexes the same text without a table.
    pub async fn columns(&self) -> anyhow::Result<Vec<(String, String, String, bool)>> {
        use diesel::sql_types::{Bool, Text};
        #[derive(diesel::QueryableByName)]
        struct Col {
            #[diesel(sql_type = Text)]
            table_name: String,
            #[diesel(sql_type = Text)]
            column_name: String,
            #[diesel(sql_type = Text)]
            data_type: String,
            #[diesel(sql_type = Bool)]
            nullable: bool,
        }
        let rows: Vec<Col> = match self.get().await? {
            Conn::Pg(mut c) => {
                diesel::sql_query(
                    "SELECT table_name::text AS table_name, column_name::text AS column_name, \
                     data_type::text AS data_type, (is_nullable = 'YES') AS nullable \
                     FROM information_schema.columns WHERE table_schema = 'public' \
                     AND table_name <> '__diesel_schema_migrations'",
                )
                .load(&mut *c)
                .await?
            }
            Conn::Sqlite(mut c) => {
                diesel::sql_query(
                    "SELECT m.name AS table_name, p.name AS column_name, p.type AS data_type, \
                     (p.\"notnull\" = 0 AND p.pk = 0) AS nullable \
                     FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
                     AND m.name NOT LIKE 'fts_%' AND m.name <> '__diesel_schema_migrations'",
                )
                .load(&mut *c)
                .await?
            }
        };
        let mut out: Vec<_> =
            rows.into_iter().map(|c| (c.table_name, c.column_name, portable_type(&c.data_type), c.nullable)).collect();
        out.sort();
        Ok(out)
    }
}

/// Normalises a backend's column type name to the portable vocabulary.
fn portable_type(t: &str) -> String {
    let t = t.to_ascii_lowercase();
    match t.as_str() {
        "text" | "character varying" | "varchar" => "text",
        "bigint" | "int8" => "bigint",
        "integer" | "int" | "int4" => "integer",
        "boolean" | "bool" => "boolean",
        other => return other.to_string(),
    }
    .to_string()
}
