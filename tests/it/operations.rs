//! Operations: Prometheus metrics that parse and move, failed credentials throttled per address,
//! security headers on every page, the landing page, CORS, readiness details, and the process's
//! own lines — start-up, refused requests with their request id — and its refusal to start
//! anything when its port is taken.

use std::io::Read;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::common::{TestApp, backends, ws};

/// The value of the first sample of `name` whose labels include all of `labels` (0 when none).
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(ref b) => b.last().map_or(0.0, |b| b.count),
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .sum()
}

async fn scrape(t: &TestApp, token: Option<&str>) -> (u16, prometheus_parse::Scrape) {
    let mut req = t.http.get(t.url("/metrics"));
    if let Some(tok) = token {
        req = req.bearer_auth(tok);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    (status, prometheus_parse::Scrape::parse(lines).expect("the Prometheus text format"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_scrape_parses_and_its_counters_move_with_the_requests() {
    for backend in backends() {
        let t = TestApp::with_config(backend, |c| {
            c.webhook_allow_http = true;
            c.webhook_allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
            c.webhook_poll_interval_ms = 50;
            c.metrics_token = Some("a-long-metrics-token".into());
        })
        .await;
        let admin = t.register("admin@example.com").await;
        t.lift_starter_limits(&admin.token).await;
        let (key, _) = t.create_key(&admin.token, &["*"]).await;

        let (status, _) = scrape(&t, None).await;
        assert_eq!(status, 401, "the token is required when configured");
        let (status, before) = scrape(&t, Some("a-long-metrics-token")).await;
        assert_eq!(status, 200);
        assert_eq!(sample(&before, "gantry_build_info", &[]), 1.0);

        for _ in 0..3 {
            t.gql_ok(Some(&key), "{ viewer { id } }", json!({})).await;
        }
        let (s, _) = t.rest("GET", "/keys", Some(&key), None).await;
        assert_eq!(s, 200);
        let (s, _) = t.gql_status(Some("gk_live_nope"), "{ viewer { id } }", json!({})).await;
        assert_eq!(s, 401);
        let mut sock = ws::connect_authed(&t.ws_url(), &key).await;
        ws::subscribe(&mut sock, "1", "{ viewer { id } }").await;
        ws::next_data(&mut sock).await;
        // A webhook attempt, delivered to a local receiver.
        let (receiver, base) = crate::webhooks::Receiver::start().await;
        let r = t
            .gql_ok(
                Some(&key),
                "mutation($u: String!) { createWebhookEndpoint(input: {url: $u, filterTypes: [\"webhook.test\"]}) { endpoint { id } } }",
                json!({ "u": format!("{base}/in") }),
            )
            .await;
        let endpoint = r["createWebhookEndpoint"]["endpoint"]["id"].as_str().unwrap().to_string();
        t.gql_ok(Some(&key), "mutation($id: ID!) { sendTestEvent(endpointId: $id) { id } }", json!({ "id": endpoint }))
            .await;
        for _ in 0..500 {
            if receiver.count() > 0 {
                break;
            }
            t.app.webhooks.wake();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        gantry::server::flush(&t.app).await;

        let mut after = scrape(&t, Some("a-long-metrics-token")).await.1;
        for _ in 0..100 {
            if sample(&after, "gantry_webhook_attempts_total", &[("outcome", "success")]) >= 1.0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            after = scrape(&t, Some("a-long-metrics-token")).await.1;
        }
        let moved = |name: &str, labels: &[(&str, &str)]| sample(&after, name, labels) - sample(&before, name, labels);
        let requests = "gantry_requests_total";
        assert_eq!(
            moved(requests, &[("surface", "graphql"), ("operation", "query viewer"), ("status", "200")]),
            3.0,
            "[{backend:?}]"
        );
        assert_eq!(moved(requests, &[("surface", "rest"), ("operation", "GET /api/v1/keys"), ("status", "200")]), 1.0);
        assert_eq!(moved(requests, &[("surface", "graphql"), ("status", "401")]), 1.0);
        assert_eq!(moved(requests, &[("surface", "websocket"), ("operation", "query viewer"), ("status", "200")]), 1.0);
        assert!(moved("gantry_request_duration_seconds", &[("surface", "graphql")]) >= 3.0);
        let backend_label = if backend == crate::common::Backend::PostgresRedis { "redis" } else { "memory" };
        assert!(
            moved("gantry_limiter_decisions_total", &[("outcome", "allowed"), ("backend", backend_label)]) >= 5.0,
            "[{backend:?}]"
        );
        assert!(sample(&after, "gantry_webhook_attempts_total", &[("outcome", "success")]) >= 1.0, "[{backend:?}]");
        assert!(sample(&after, "gantry_webhook_attempt_duration_seconds", &[]) >= 1.0);
        assert!(sample(&after, "gantry_usage_batches_total", &[]) >= 1.0, "the flush wrote a batch");
        assert!(sample(&after, "gantry_usage_records_written_total", &[]) >= 5.0);
        assert!(sample(&after, "gantry_db_pool_max_connections", &[]) >= 1.0);
        assert!(after.samples.iter().any(|s| s.metric == "gantry_webhook_queue_deliveries"));
        assert!(after.samples.iter().any(|s| s.metric == "gantry_bus_messages_total"));
        if backend == crate::common::Backend::SqliteMemory {
            assert!(sample(&after, "gantry_disk_free_bytes", &[]) > 0.0);
        }

        // Readiness names the queue (and the disk, for SQLite).
        let body: Value = t.http.get(t.url("/readyz")).send().await.unwrap().json().await.unwrap();
        assert_eq!(body["checks"]["webhook_queue"]["status"], "ok", "{body}");
        assert!(body["checks"]["webhook_queue"]["pending"].is_i64(), "{body}");
        if backend == crate::common::Backend::SqliteMemory {
            assert!(body["checks"]["disk"]["free_bytes"].as_u64().unwrap() > 0, "{body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_credentials_block_the_address_for_a_while_whatever_it_presents_next() {
    for backend in backends() {
        let t = TestApp::new(backend).await;
        let admin = t.register("admin@example.com").await;
        t.lift_starter_limits(&admin.token).await;
        let (key, _) = t.create_key(&admin.token, &["*"]).await;
        let mut statuses = Vec::new();
        let mut retry_after = None;
        for i in 0..60 {
            let bad = format!("gk_live_{i:0>43}");
            let resp = t
                .http
                .post(t.url("/graphql"))
                .bearer_auth(&bad)
                .json(&json!({ "query": "{ viewer { id } }" }))
                .send()
                .await
                .unwrap();
            statuses.push(resp.status().as_u16());
            if resp.status() == 429 {
                retry_after = resp.headers().get("retry-after").cloned();
            }
        }
        assert!(statuses[..30].iter().all(|s| *s == 401), "[{backend:?}] {statuses:?}");
        assert!(statuses[30..].iter().all(|s| *s == 429), "[{backend:?}] {statuses:?}");
        assert!(retry_after.is_some(), "a 429 says when to retry");
        // REST and WebSocket refuse the same address too; a valid key still works.
        let (status, body) = t.rest("GET", "/keys", Some("gk_live_stillguessing"), None).await;
        assert_eq!((status, body["error"]["type"].as_str()), (429, Some("rate_limit_exceeded")), "{body}");
        let mut sock = ws::connect(&t.ws_url(), "graphql-transport-ws").await;
        ws::send(
            &mut sock,
            json!({ "type": "connection_init", "payload": { "Authorization": "Bearer gk_live_guess" } }),
        )
        .await;
        let closed = ws::next(&mut sock).await.expect_err("closed");
        assert_eq!(closed.0, 4429, "{closed:?}");
        // While blocked, even a valid key is refused (a right guess looks like a wrong one); a
        // minute later it works.
        let (status, _) = t.gql_status(Some(&key), "{ viewer { id } }", json!({})).await;
        assert_eq!(status, 429);
        t.clock.advance_ms(61_000);
        t.gql_ok(Some(&key), "{ viewer { id } }", json!({})).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_security_headers_and_the_landing_page_links_everything() {
    let t = TestApp::new(crate::common::Backend::SqliteMemory).await;
    let resp = t.http.get(t.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    let html = resp.text().await.unwrap();
    for link in [
        "/playground/",
        "/api/v1/openapi.json",
        "/healthz",
        "/readyz",
        "/metrics",
        "/.well-known/oauth-authorization-server",
    ] {
        assert!(html.contains(&format!("href=\"{link}\"")), "{link} in {html}");
    }
    for path in [
        "/",
        "/playground/",
        "/console/",
        "/api/v1/docs",
        "/invitations/accept?token=x",
        "/auth/reset-password?token=x",
        "/oauth/authorize?client_id=x",
    ] {
        let resp = t.http.get(t.url(path)).send().await.unwrap();
        let h = resp.headers();
        let csp = h.get("content-security-policy").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        // Scripts talk to this server only (its WebSocket included, which 'self' covers).
        assert!(!csp.contains(" ws:") && !csp.contains("wss:") && !csp.contains("connect-src *"), "{path}: {csp}");
        assert_eq!(h.get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"), "{path}");
        assert!(h.get("referrer-policy").is_some(), "{path}");
    }
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_closed_by_default_and_open_to_configured_origins_with_preflight() {
    let preflight = async |t: &TestApp, origin: &str| {
        t.http
            .request(reqwest::Method::OPTIONS, t.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type,x-organization-id")
            .send()
            .await
            .unwrap()
    };
    let closed = TestApp::new(crate::common::Backend::SqliteMemory).await;
    let r = preflight(&closed, "https://app.example.com").await;
    assert!(r.headers().get("access-control-allow-origin").is_none(), "no CORS unless configured");

    let t = TestApp::with_config(crate::common::Backend::SqliteMemory, |c| {
        c.cors_origins = vec!["https://app.example.com".into()];
    })
    .await;
    let admin = t.register("admin@example.com").await;
    let r = preflight(&t, "https://app.example.com").await;
    assert!(r.status().is_success(), "{}", r.status());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    assert!(h["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    let allowed = h["access-control-allow-headers"].to_str().unwrap().to_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("x-organization-id"), "{allowed}");
    let r = t
        .http
        .post(t.url("/graphql"))
        .header("origin", "https://app.example.com")
        .bearer_auth(&admin.token)
        .json(&json!({ "query": "{ viewer { id } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example.com");
    assert!(r.headers()["access-control-expose-headers"].to_str().unwrap().to_lowercase().contains("ratelimit"));
    let r = preflight(&t, "https://evil.example.net").await;
    assert!(r.headers().get("access-control-allow-origin").is_none(), "another origin gets nothing");
}

/// Starts `gantry serve` on a free port; returns the child and a thread collecting its output, and
/// the address once it listens.
fn start(dir: &std::path::Path, bind: &str) -> (std::process::Child, std::thread::JoinHandle<String>, Option<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("serve")
        .env("GANTRY_BIND", bind)
        .env("GANTRY_DATA_DIR", dir)
        .env("GANTRY_LOG_FORMAT", "json")
        .env("GANTRY_LOG", "info")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gantry");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let mut buf = [0u8; 4096];
        let mut sent = false;
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.push_str(&String::from_utf8_lossy(&buf[..n]));
            if !sent && let Some(line) = all.lines().find(|l| l.contains("\"address\"")) {
                let v: Value = serde_json::from_str(line).unwrap();
                let _ = tx.send(v["fields"]["address"].as_str().unwrap().to_string());
                sent = true;
            }
        }
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        all + &err
    });
    let addr = rx.recv_timeout(std::time::Duration::from_secs(60)).ok();
    (child, reader, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_says_where_it_is_logs_refusals_with_request_ids_and_never_starts_on_a_taken_port() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, reader, addr) = start(dir.path(), "127.0.0.1:0");
    let addr = addr.expect("the address");
    let http = crate::common::http_client();
    let resp = http
        .post(format!("http://{addr}/graphql"))
        .bearer_auth("gk_live_wrongwrongwrong")
        .header("x-request-id", "req-refused-123")
        .json(&json!({ "query": "{ viewer { id } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(child.wait().unwrap().success());
    let logs = reader.join().unwrap();
    assert!(logs.contains(&format!("http://{addr}/playground/")), "the playground's URL: {logs}");
    assert!(logs.contains("the first account to register becomes the platform administrator"), "{logs}");
    assert!(logs.contains(&dir.path().join("gantry.db").display().to_string()), "the database file: {logs}");
    let refused = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["fields"]["message"] == "request refused")
        .unwrap_or_else(|| panic!("no refused request in {logs}"));
    assert_eq!(refused["fields"]["request_id"], "req-refused-123", "{refused}");
    assert_eq!(refused["fields"]["status"], 401);
    assert_eq!(refused["level"], "INFO");

    // A taken port: the process fails before it creates or migrates anything.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let (mut child, reader, addr) = start(fresh.path(), &taken.local_addr().unwrap().to_string());
    assert!(addr.is_none());
    let status = child.wait().unwrap();
    assert!(!status.success());
    let logs = reader.join().unwrap();
    assert!(logs.contains("cannot listen on"), "{logs}");
    assert!(!fresh.path().join("gantry.db").exists(), "nothing was written");
}
