//! The `TestApp` harness: a real Gantry server on an ephemeral port with its own database, on
//! every backend combination that is reachable — SQLite + in-process always, PostgreSQL + Redis
//! when they answer (required when `CI=true`). Time is a manual clock the test moves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gantry::app::{App, AppOptions};
use gantry::config::Config;
use gantry::platform::clock::ManualClock;
use serde_json::{Value, json};

pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    SqliteMemory,
    PostgresRedis,
}

fn reachable(addr: &str) -> bool {
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(500)).is_ok()
}

/// An HTTP client for tests. reqwest is built without a default TLS provider (Gantry picks ring),
/// so one is installed first.
/// Lifts every rate window, the monthly quota, the query-cost bucket and the caps on API keys of
/// the Starter plan (the first user registered is the platform administrator, who may). For tests
/// that make many calls, or poll under a standing clock (whose rate windows never reset).
pub const LIFT_STARTER_LIMITS: &str = "mutation { updatePlan(id: \"pln_0000000000000000000starter\", input: {perSecond: null, perMinute: null, perHour: null, perDay: null, monthlyQuota: null, queryCostBucket: 100000000, queryCostRestoreRate: 100000000, maxApiKeys: null}) { slug } }";

pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Every backend combination to run on. PostgreSQL + Redis are required in CI.
pub fn backends() -> Vec<Backend> {
    let pg = reachable("127.0.0.1:5432");
    let redis = reachable("127.0.0.1:6379");
    if in_ci() {
        assert!(
            pg && redis,
            "CI=true but PostgreSQL (127.0.0.1:5432: {pg}) or Redis (127.0.0.1:6379: {redis}) is unreachable"
        );
    }
    let mut out = vec![Backend::SqliteMemory];
    if pg && redis {
        out.push(Backend::PostgresRedis);
    } else {
        eprintln!("note: PostgreSQL or Redis unreachable; running on SQLite + memory only");
    }
    out
}

/// Whether PostgreSQL and Redis can be used (and must be, in CI).
pub fn postgres_and_redis() -> bool {
    backends().contains(&Backend::PostgresRedis)
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", gantry::platform::crypto::random_base62(12).to_lowercase())
}

/// Creates a fresh PostgreSQL database and returns its URL.
pub async fn create_pg_database() -> (String, String) {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let name = unique("gantry_t_");
    let mut conn = AsyncPgConnection::establish(PG_ADMIN_URL).await.expect("connect to PostgreSQL");
    conn.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create test database");
    (format!("postgres://postgres@127.0.0.1:5432/{name}"), name)
}

pub fn drop_pg_database(name: String) {
    // Drop runs outside any runtime; use a short-lived one on a plain thread.
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
            if let Ok(mut conn) = AsyncPgConnection::establish(PG_ADMIN_URL).await {
                let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
            }
        });
    })
    .join();
}

/// Drops a test database when it goes out of scope.
pub struct PgDatabase(pub String);

impl Drop for PgDatabase {
    fn drop(&mut self) {
        drop_pg_database(std::mem::take(&mut self.0));
    }
}

pub struct TestApp {
    pub backend: Backend,
    pub addr: SocketAddr,
    pub app: Arc<App>,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    config: Config,
    pg_database: Option<String>,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(name) = self.pg_database.take() {
            drop_pg_database(name);
        }
    }
}

pub fn test_config(backend: Backend, dir: &std::path::Path, database_url: &str, redis_prefix: &str) -> Config {
    let mut config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        database_url: Some(database_url.to_string()),
        database_pool_size: 8,
        redis_prefix: redis_prefix.to_string(),
        max_body_bytes: 64 * 1024,
        ..Config::default()
    };
    if backend == Backend::PostgresRedis {
        config.redis_url = Some(REDIS_URL.to_string());
    }
    config
}

impl TestApp {
    pub async fn new(backend: Backend) -> TestApp {
        Self::with_config(backend, |_| {}).await
    }

    /// A server with a configuration the test adjusts first.
    pub async fn with_config(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
        // `GANTRY_TEST_LOG=warn` (an env-filter) shows the servers' logs beside a test's output.
        static LOG: std::sync::Once = std::sync::Once::new();
        LOG.call_once(|| {
            if let Ok(filter) = std::env::var("GANTRY_TEST_LOG") {
                let _ = tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                    .with_test_writer()
                    .try_init();
            }
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let (database_url, pg_database) = match backend {
            Backend::SqliteMemory => (format!("sqlite://{}", dir.path().join("gantry.db").display()), None),
            Backend::PostgresRedis => {
                let (url, name) = create_pg_database().await;
                (url, Some(name))
            }
        };
        let redis_prefix = unique("gantry-test-");
        let mut config = test_config(backend, dir.path(), &database_url, &redis_prefix);
        adjust(&mut config);
        let clock = Arc::new(ManualClock::new(chrono::Utc::now().timestamp_millis()));
        Self::start(backend, config, clock, pg_database, dir).await
    }

    async fn start(
        backend: Backend,
        config: Config,
        clock: Arc<ManualClock>,
        pg_database: Option<String>,
        dir: tempfile::TempDir,
    ) -> TestApp {
        let app =
            gantry::server::build(config.clone(), AppOptions { clock: Some(clock.clone()) }).await.expect("app builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server_app = app.clone();
        let server = tokio::spawn(async move {
            let _ = gantry::server::run(listener, server_app, async move {
                let _ = rx.await;
            })
            .await;
        });
        TestApp {
            backend,
            addr,
            app,
            clock,
            http: http_client(),
            shutdown: Some(tx),
            server: Some(server),
            config,
            pg_database,
            _dir: dir,
        }
    }

    /// Stops the server gracefully (it flushes what it buffered) and starts a new process-like
    /// instance on the same database, Redis prefix and clock.
    pub async fn restart(mut self) -> TestApp {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task");
        }
        let pg_database = self.pg_database.take();
        let dir = tempfile::tempdir().expect("tempdir");
        let dir = std::mem::replace(&mut self._dir, dir);
        Self::start(self.backend, self.config.clone(), self.clock.clone(), pg_database, dir).await
    }

    /// Another node on the same database, Redis prefix and clock (not serving HTTP): for jobs
    /// that any node may run at once.
    pub async fn second_node(&self) -> Arc<App> {
        gantry::server::build(self.config.clone(), AppOptions { clock: Some(self.clock.clone()) })
            .await
            .expect("app builds")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql/ws", self.addr)
    }

    /// POSTs a GraphQL operation; returns (HTTP status, body).
    pub async fn gql_status(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        let mut req = self.http.post(self.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.expect("JSON body");
        (status, body)
    }

    /// POSTs a GraphQL operation and returns its body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.gql_status(token, query, variables).await.1
    }

    /// POSTs a GraphQL operation that must succeed; returns `data`.
    pub async fn gql_ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "[{:?}] unexpected errors: {body}", self.backend);
        body["data"].clone()
    }

    /// Calls metered in the last 24 hours, by operation (`GET /api/v1/keys`, `query viewer`).
    pub async fn calls_by_operation(&self, token: &str) -> std::collections::HashMap<String, i64> {
        let data = self
            .gql_ok(Some(token), "{ usageByEndpoint(period: LAST_24_HOURS) { operation stats { calls } } }", json!({}))
            .await;
        data["usageByEndpoint"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["operation"].as_str().unwrap().to_string(), r["stats"]["calls"].as_i64().unwrap()))
            .collect()
    }

    /// Registers a user; returns its session token, user id and personal organization id.
    pub async fn register(&self, email: &str) -> Session {
        let data = self
            .gql_ok(
                None,
                "mutation($i: RegisterInput!) { register(input: $i) { user { id personalOrganizationId } session { token refreshToken } } }",
                json!({ "i": { "email": email, "password": "correct horse battery", "name": "Test" } }),
            )
            .await;
        Session {
            token: data["register"]["session"]["token"].as_str().unwrap().to_string(),
            refresh_token: data["register"]["session"]["refreshToken"].as_str().unwrap().to_string(),
            user_id: data["register"]["user"]["id"].as_str().unwrap().to_string(),
            org_id: data["register"]["user"]["personalOrganizationId"].as_str().unwrap().to_string(),
        }
    }

    /// Creates a key with the given scopes; returns (secret, key id).
    /// Lifts the Starter plan's limits ([`LIFT_STARTER_LIMITS`]); `admin_token` is the first user's.
    pub async fn lift_starter_limits(&self, admin_token: &str) {
        let r = self.gql_ok(Some(admin_token), LIFT_STARTER_LIMITS, json!({})).await;
        assert_eq!(r["updatePlan"]["slug"], "starter");
    }

    pub async fn create_key(&self, token: &str, scopes: &[&str]) -> (String, String) {
        self.create_key_with(token, json!({ "name": "test key", "scopes": scopes })).await
    }

    pub async fn create_key_with(&self, token: &str, input: Value) -> (String, String) {
        let data = self
            .gql_ok(
                Some(token),
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret apiKey { id } } }",
                json!({ "i": input }),
            )
            .await;
        (
            data["createApiKey"]["secret"].as_str().unwrap().to_string(),
            data["createApiKey"]["apiKey"]["id"].as_str().unwrap().to_string(),
        )
    }

    /// A REST call; returns (status, body or Null for an empty body).
    pub async fn rest(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        self.rest_at(method, &format!("/api/v1{path}"), token, body).await
    }

    /// A REST call at a full path (`/api/v2/...`).
    pub async fn rest_at(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") };
        (status, body)
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub refresh_token: String,
    pub user_id: String,
    pub org_id: String,
}

/// The `extensions.code` of the first error.
pub fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("<none>")
}

/// A WebSocket client speaking `graphql-transport-ws` (or the legacy `graphql-ws`).
pub mod ws {
    use futures_util::{SinkExt, StreamExt};
    use serde_json::{Value, json};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

    pub async fn connect(url: &str, protocol: &str) -> Socket {
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
        let (socket, resp) = tokio_tungstenite::connect_async(req).await.expect("ws connect");
        assert_eq!(resp.headers().get("sec-websocket-protocol").unwrap(), protocol);
        socket
    }

    pub async fn send(socket: &mut Socket, msg: Value) {
        socket.send(Message::Text(msg.to_string().into())).await.expect("ws send");
    }

    /// The next message: `Ok(json)` for text, `Err((code, reason))` for a close frame.
    pub async fn next(socket: &mut Socket) -> Result<Value, (u16, String)> {
        loop {
            let msg = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
                .await
                .expect("no WebSocket message within 10 s");
            match msg {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(frame))) => {
                    return Err(frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new())));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err((1006, e.to_string())),
                None => return Err((1006, "closed".into())),
            }
        }
    }

    /// Connects, sends `connection_init` with the token and expects `connection_ack`.
    pub async fn connect_authed(url: &str, token: &str) -> Socket {
        let mut s = connect(url, "graphql-transport-ws").await;
        send(&mut s, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))
            .await;
        let ack = next(&mut s).await.expect("ack");
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        s
    }

    /// Starts a subscription with id `id`.
    pub async fn subscribe(socket: &mut Socket, id: &str, query: &str) {
        send(socket, json!({ "id": id, "type": "subscribe", "payload": { "query": query } })).await;
    }

    /// The next `next` payload of a subscription (skipping pings).
    pub async fn next_data(socket: &mut Socket) -> Value {
        loop {
            let msg = next(socket).await.expect("message");
            match msg["type"].as_str() {
                Some("next") | Some("data") => return msg["payload"].clone(),
                Some("ping") | Some("ka") => continue,
                _ => panic!("unexpected message: {msg}"),
            }
        }
    }
}

/// A TCP proxy in front of the real Redis that a test can cut and restore, to take Redis away
/// from one server without touching the Redis other tests share.
pub struct RedisProxy {
    pub addr: SocketAddr,
    listener: Option<tokio::task::JoinHandle<()>>,
    conns: Arc<tokio::sync::Mutex<tokio::task::JoinSet<()>>>,
}

impl RedisProxy {
    pub async fn start() -> RedisProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = Arc::new(tokio::sync::Mutex::new(tokio::task::JoinSet::new()));
        RedisProxy { addr, listener: Some(tokio::spawn(Self::serve(listener, conns.clone()))), conns }
    }

    async fn serve(listener: tokio::net::TcpListener, conns: Arc<tokio::sync::Mutex<tokio::task::JoinSet<()>>>) {
        while let Ok((mut client, _)) = listener.accept().await {
            conns.lock().await.spawn(async move {
                if let Ok(mut upstream) = tokio::net::TcpStream::connect("127.0.0.1:6379").await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    }

    /// Stops listening and closes every proxied connection; returns once they are all closed.
    pub async fn cut(&mut self) {
        if let Some(t) = self.listener.take() {
            t.abort();
            let _ = t.await;
        }
        let mut conns = self.conns.lock().await;
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }

    /// Listens again on the same address.
    pub async fn restore(&mut self) {
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) if tries < 50 => {
                    // The port is free again once the old listener is gone; retry briefly.
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot rebind the Redis proxy: {e}"),
            }
        };
        self.listener = Some(tokio::spawn(Self::serve(listener, self.conns.clone())));
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }
}

impl Drop for RedisProxy {
    fn drop(&mut self) {
        if let Some(t) = self.listener.take() {
            t.abort();
        }
        if let Ok(mut conns) = self.conns.try_lock() {
            conns.abort_all();
        }
    }
}

/// Runs SQL statements straight on the test server's database (setting up rows or triggers that
/// the API would take long to make).
pub async fn execute_sql(app: &TestApp, sql: &str) {
    use diesel_async::SimpleAsyncConnection;
    let done: Result<(), gantry::error::Error> = async {
        gantry::with_conn!(app.app.db, c => c.batch_execute(sql).await.map_err(gantry::error::Error::internal)?);
        Ok(())
    }
    .await;
    done.unwrap();
}

/// While `on`, inserts into `table` whose new row meets `when` (SQL over `NEW`) fail: a database
/// trigger that raises, on either backend.
pub async fn refuse_inserts(app: &TestApp, table: &str, when: &str, on: bool) {
    let sql = match (app.app.db.is_postgres(), on) {
        (true, true) => format!(
            "CREATE FUNCTION refuse_{table}() RETURNS trigger AS $$ BEGIN IF {when} THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse_{table}();"
        ),
        (true, false) => format!("DROP TRIGGER refuse_{table} ON {table}; DROP FUNCTION refuse_{table}();"),
        // SQLite: the first statement reads the schema, so a pooled connection whose cached schema
        // predates another connection's DDL sees that DDL (DDL is checked against the cache).
        (false, true) => format!(
            "SELECT count(*) FROM sqlite_master; \
             CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} WHEN {when} BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        ),
        (false, false) => format!("SELECT count(*) FROM sqlite_master; DROP TRIGGER refuse_{table};"),
    };
    execute_sql(app, &sql).await;
}

/// `head` followed by fragments F0…F{depth}, each but the last spreading the next one twice, the
/// last selecting `leaf`: 2^depth leaves in a few KB (a document whose naive walk never ends).
pub fn fragment_chain(head: &str, depth: usize, leaf: &str) -> String {
    let mut q = head.to_string();
    for i in 0..depth {
        q.push_str(&format!(" fragment F{i} on Query {{ ...F{n} ...F{n} }}", n = i + 1));
    }
    q + &format!(" fragment F{depth} on Query {{ {leaf} }}")
}
