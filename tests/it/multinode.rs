//! Two real `gantry` processes sharing one PostgreSQL and one Redis.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::json;

use crate::common::{REDIS_URL, create_pg_database, postgres_and_redis, unique, ws};

struct Node {
    child: Child,
    addr: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_node(database_url: &str, prefix: &str, dir: &std::path::Path) -> Node {
    spawn_gantry(&[("DATABASE_URL", database_url), ("REDIS_URL", REDIS_URL), ("GANTRY_REDIS_PREFIX", prefix)], dir)
}

/// Starts `gantry serve` with these variables (and webhooks allowed to reach 127.0.0.1); returns
/// once it reports its address.
fn spawn_gantry(envs: &[(&str, &str)], dir: &std::path::Path) -> Node {
    spawn_gantry_with(&["serve"], envs, dir)
}

fn gantry_command(args: &[&str], envs: &[(&str, &str)], dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gantry"));
    command.args(args);
    for (k, v) in envs {
        command.env(k, v);
    }
    command
        .env("GANTRY_WEBHOOK_ALLOW_HTTP", "true")
        .env("GANTRY_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
        .env("GANTRY_WEBHOOK_POLL_INTERVAL_MS", "100")
        .env("GANTRY_BIND", "127.0.0.1:0")
        .env("GANTRY_DATA_DIR", dir)
        .env("GANTRY_LOG_FORMAT", "json")
        .env("GANTRY_LOG", "info")
        .env_remove("RUST_LOG");
    command
}

fn spawn_gantry_with(args: &[&str], envs: &[(&str, &str)], dir: &std::path::Path) -> Node {
    let mut child =
        gantry_command(args, envs, dir).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start gantry");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(addr) = v["fields"]["address"].as_str()
            {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let addr = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("node reports its address");
    Node { child, addr }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_raised_on_one_process_reaches_a_subscriber_on_another() {
    if !postgres_and_redis() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (database_url, name) = create_pg_database().await;
    let _database = crate::common::PgDatabase(name);
    let prefix = unique("gantry-multinode-");
    let a = start_node(&database_url, &prefix, dir.path());
    let b = start_node(&database_url, &prefix, dir.path());
    let http = crate::common::http_client();
    let gql = async |node: &Node, token: Option<&str>, query: &str, vars: serde_json::Value| -> serde_json::Value {
        let mut req =
            http.post(format!("http://{}/graphql", node.addr)).json(&json!({ "query": query, "variables": vars }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap().json().await.unwrap()
    };
    let reg = gql(&a, None, "mutation { register(input: {email: \"n@example.com\", password: \"correct horse battery\"}) { session { token } } }", json!({})).await;
    let token = reg["data"]["register"]["session"]["token"].as_str().unwrap().to_string();
    let key =
        gql(&a, Some(&token), "mutation { createApiKey(input: {name: \"k\", scopes: [\"*\"]}) { secret } }", json!({}))
            .await;
    let secret = key["data"]["createApiKey"]["secret"].as_str().unwrap().to_string();

    // Node B serves the session and key created on node A (shared database and server secret).
    let mut sock = ws::connect_authed(&format!("ws://{}/graphql/ws", b.addr), &secret).await;
    ws::subscribe(&mut sock, "1", "subscription { events(types: [\"key.created\"]) { type data } }").await;
    let payload = crate::subscriptions::until_event(&mut sock, async || {
        gql(
            &a,
            Some(&token),
            "mutation { createApiKey(input: {name: \"from-a\", scopes: [\"keys:read\"]}) { secret } }",
            json!({}),
        )
        .await;
    })
    .await;
    assert_eq!(payload["data"]["events"]["type"], "key.created");
    assert_eq!(payload["data"]["events"]["data"]["key"]["name"], "from-a");

    // A revocation on A clears B's credential cache at once.
    let victim = gql(
        &a,
        Some(&token),
        "mutation { createApiKey(input: {name: \"victim\", scopes: [\"*\"]}) { secret apiKey { id } } }",
        json!({}),
    )
    .await;
    let victim_secret = victim["data"]["createApiKey"]["secret"].as_str().unwrap().to_string();
    let victim_id = victim["data"]["createApiKey"]["apiKey"]["id"].as_str().unwrap().to_string();
    let ok = gql(&b, Some(&victim_secret), "{ viewer { id } }", json!({})).await;
    assert_eq!(ok["data"]["viewer"]["id"], victim_id.as_str(), "B caches the key: {ok}");
    // A socket opened on B before the revocation, serving operations.
    let mut victim_sock = ws::connect_authed(&format!("ws://{}/graphql/ws", b.addr), &victim_secret).await;
    ws::send(
        &mut victim_sock,
        json!({ "id": "before", "type": "subscribe", "payload": { "query": "{ viewer { id } }" } }),
    )
    .await;
    assert_eq!(ws::next(&mut victim_sock).await.expect("answer")["type"], "next");
    gql(&a, Some(&token), "mutation($id: ID!) { revokeApiKey(id: $id) { id } }", json!({ "id": victim_id })).await;
    // The invalidation travels over Redis; poll B briefly for it to land (bounded).
    let mut refused = false;
    for _ in 0..50 {
        let r = gql(&b, Some(&victim_secret), "{ viewer { id } }", json!({})).await;
        if r["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED" {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "node B kept accepting a key revoked on node A");
    // Once B knows, the open socket serves the key no more: its next operation is refused, or the
    // socket is closed (4401) first.
    ws::send(
        &mut victim_sock,
        json!({ "id": "after", "type": "subscribe", "payload": { "query": "{ viewer { id } }" } }),
    )
    .await;
    loop {
        match ws::next(&mut victim_sock).await {
            Ok(msg) if msg["id"] == "after" => {
                assert_eq!(msg["type"], "error", "served on B after the revocation: {msg}");
                assert_eq!(msg["payload"][0]["extensions"]["code"], "UNAUTHENTICATED", "{msg}");
                break;
            }
            Ok(other) => assert_ne!(other["type"], "next", "{other}"),
            Err((code, _)) => {
                assert_eq!(code, 4401);
                break;
            }
        }
    }

    // Quota crossings counted on node A reach subscribers connected to node B.
    let plan = "mutation { updatePlan(id: \"pln_0000000000000000000starter\", input: {monthlyQuota: 20, perSecond: null, perDay: null}) { slug } }";
    let updated = gql(&a, Some(&token), plan, json!({})).await;
    assert_eq!(updated["data"]["updatePlan"]["slug"], "starter", "{updated}");
    let quota = gql(
        &a,
        Some(&token),
        "mutation { createApiKey(input: {name: \"metered\", scopes: [\"*\"]}) { secret apiKey { id } } }",
        json!({}),
    )
    .await;
    let quota_secret = quota["data"]["createApiKey"]["secret"].as_str().unwrap().to_string();
    let quota_id = quota["data"]["createApiKey"]["apiKey"]["id"].as_str().unwrap().to_string();
    let mut alerts = ws::connect_authed(&format!("ws://{}/graphql/ws", b.addr), &token).await;
    ws::subscribe(&mut alerts, "t", "subscription { usageThresholdReached(threshold: 80) { percent used quota } }")
        .await;
    ws::subscribe(
        &mut alerts,
        "k",
        &format!("subscription {{ apiKeyQuotaExceeded(keyId: \"{quota_id}\") {{ keyId severity }} }}"),
    )
    .await;
    // The subscriptions are live on B once an event raised on A reaches B after them.
    ws::subscribe(&mut alerts, "sync", "subscription { events(types: [\"key.created\"]) { type } }").await;
    crate::subscriptions::until_event(&mut alerts, async || {
        gql(
            &a,
            Some(&token),
            "mutation { createApiKey(input: {name: \"sync\", scopes: [\"keys:read\"]}) { secret } }",
            json!({}),
        )
        .await;
    })
    .await;
    let mut admitted = 0;
    loop {
        let r = http
            .post(format!("http://{}/graphql", a.addr))
            .bearer_auth(&quota_secret)
            .json(&json!({ "query": "{ viewer { id } }" }))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => admitted += 1,
            429 => break,
            other => panic!("unexpected status {other}"),
        }
        assert!(admitted <= 20, "the quota of 20 admitted more");
    }
    let mut values = Vec::new();
    while values.len() < 4 {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws::next(&mut alerts))
            .await
            .expect("quota messages reach node B")
            .expect("message");
        if msg["type"] == "next" && msg["id"] != "sync" {
            values.push(msg["payload"]["data"].clone());
        }
    }
    for percent in [80, 90, 100] {
        assert!(
            values.iter().any(|v| v["usageThresholdReached"]["percent"] == percent),
            "node B did not see the {percent} % crossing: {values:?}"
        );
    }
    assert!(
        values.iter().any(|v| v["apiKeyQuotaExceeded"] == json!({ "keyId": quota_id, "severity": "CRITICAL" })),
        "node B did not see the key refused by the quota: {values:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_hammered_together_never_admit_more_than_the_limit() {
    if !postgres_and_redis() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (database_url, name) = create_pg_database().await;
    let _database = crate::common::PgDatabase(name);
    let prefix = unique("gantry-hammer-");
    let nodes: Vec<Node> = (0..3).map(|_| start_node(&database_url, &prefix, dir.path())).collect();
    let http = crate::common::http_client();
    let post = |addr: &str, token: Option<&str>, query: &str| {
        let mut req = http.post(format!("http://{addr}/graphql")).json(&json!({ "query": query }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let reg: serde_json::Value = post(&nodes[0].addr, None, "mutation { register(input: {email: \"h@example.com\", password: \"correct horse battery\"}) { session { token } } }")
        .await.unwrap().json().await.unwrap();
    let token = reg["data"]["register"]["session"]["token"].as_str().unwrap().to_string();
    // 20 requests a day for this key, nothing else binding: exactly 20 may pass, whichever node
    // they reach.
    let key: serde_json::Value = post(&nodes[0].addr, Some(&token), "mutation { createApiKey(input: {name: \"h\", scopes: [\"*\"], rateLimit: {perSecond: 100000, perDay: 20, concurrency: 1000}}) { secret } }")
        .await.unwrap().json().await.unwrap();
    let secret = key["data"]["createApiKey"]["secret"].as_str().unwrap().to_string();

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..90 {
        let addr = nodes[i % 3].addr.clone();
        let secret = secret.clone();
        let http = http.clone();
        tasks.spawn(async move {
            http.post(format!("http://{addr}/graphql"))
                .bearer_auth(&secret)
                .json(&json!({ "query": "{ viewer { id } }" }))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        });
    }
    let mut admitted = 0;
    let mut refused = 0;
    while let Some(status) = tasks.join_next().await {
        match status.unwrap() {
            200 => admitted += 1,
            429 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(admitted, 20, "exactly the day's limit was admitted across three nodes ({refused} refused)");
    assert_eq!(refused, 70);
}

/// Variables for a process on `backend`: nothing for SQLite (a file in the data directory), a
/// fresh database (dropped with the guard) and Redis prefix for PostgreSQL + Redis.
async fn backend_env(
    backend: crate::common::Backend,
    prefix: &str,
) -> (Vec<(&'static str, String)>, Option<crate::common::PgDatabase>) {
    if backend != crate::common::Backend::PostgresRedis {
        return (Vec::new(), None);
    }
    let (url, name) = create_pg_database().await;
    let envs = vec![("DATABASE_URL", url), ("REDIS_URL", REDIS_URL.into()), ("GANTRY_REDIS_PREFIX", unique(prefix))];
    (envs, Some(crate::common::PgDatabase(name)))
}

async fn gql_at(
    http: &reqwest::Client,
    node: &Node,
    token: Option<&str>,
    query: &str,
    vars: serde_json::Value,
) -> serde_json::Value {
    let mut req =
        http.post(format!("http://{}/graphql", node.addr)).json(&json!({ "query": query, "variables": vars }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().json().await.unwrap()
}

/// Registers the platform administrator on `node` and lifts the Starter plan's limits. Returns
/// the session token.
async fn admin_at(http: &reqwest::Client, node: &Node) -> String {
    let reg = gql_at(http, node, None, "mutation { register(input: {email: \"ops@example.com\", password: \"correct horse battery\"}) { session { token } } }", json!({})).await;
    let token = reg["data"]["register"]["session"]["token"].as_str().unwrap().to_string();
    let lifted = gql_at(http, node, Some(&token), crate::common::LIFT_STARTER_LIMITS, json!({})).await;
    assert_eq!(lifted["data"]["updatePlan"]["slug"], "starter");
    token
}

/// Registers the platform administrator on `node`, lifts the Starter plan's limits and creates a
/// webhook endpoint for `key.created` at `url`. Returns the session token.
async fn webhook_setup(http: &reqwest::Client, node: &Node, url: &str) -> String {
    let token = admin_at(http, node).await;
    let e = gql_at(
        http,
        node,
        Some(&token),
        "mutation($u: String!) { createWebhookEndpoint(input: {url: $u, filterTypes: [\"key.created\"], timeoutSeconds: 2}) { secret } }",
        json!({ "u": url }),
    )
    .await;
    assert!(e["data"]["createWebhookEndpoint"]["secret"].is_string(), "{e}");
    token
}

async fn create_key_at(http: &reqwest::Client, node: &Node, token: &str) -> String {
    let k = gql_at(
        http,
        node,
        Some(token),
        "mutation { createApiKey(input: {name: \"k\", scopes: [\"keys:read\"]}) { apiKey { id } } }",
        json!({}),
    )
    .await;
    k["data"]["createApiKey"]["apiKey"]["id"].as_str().unwrap_or_else(|| panic!("{k}")).to_string()
}

/// Key ids in the `key.created` bodies the receiver answered, with how many times each was.
fn received_keys(r: &crate::webhooks::Receiver) -> std::collections::HashMap<String, usize> {
    key_counts(&r.completed.lock().unwrap())
}

fn key_counts(requests: &[crate::webhooks::Received]) -> std::collections::HashMap<String, usize> {
    let mut out = std::collections::HashMap::new();
    for got in requests {
        let body: serde_json::Value = serde_json::from_str(&got.body).unwrap();
        *out.entry(body["data"]["key"]["id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    out
}

/// Waits (bounded, real time: these are separate processes) until every id arrived.
async fn until_received(r: &crate::webhooks::Receiver, ids: &[String], secs: u64) {
    for _ in 0..secs * 20 {
        let got = received_keys(r);
        if ids.iter().all(|id| got.contains_key(id)) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let got = received_keys(r);
    let missing: Vec<_> = ids.iter().filter(|id| !got.contains_key(*id)).collect();
    panic!("{} of {} events never arrived: {missing:?}", missing.len(), ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_delivery_loses_nothing() {
    for backend in crate::common::backends() {
        let dir = tempfile::tempdir().unwrap();
        let (mut envs, _database) = backend_env(backend, "gantry-crash-").await;
        // Two requests at a time, 400 ms each: most deliveries are still to do when the node dies,
        // and those in flight are claimed (their lease — the 2 s timeout plus 1 s — must run out
        // after the restart before they are sent again).
        envs.push(("GANTRY_WEBHOOK_LEASE_MARGIN_SECS", "1".into()));
        envs.push(("GANTRY_WEBHOOK_CONCURRENCY", "2".into()));
        let env_refs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (receiver, base) = crate::webhooks::Receiver::start().await;
        // Slow answers keep deliveries in flight when the node dies.
        *receiver.delay.lock().unwrap() = std::time::Duration::from_millis(400);
        let http = crate::common::http_client();
        let node = spawn_gantry(&env_refs, dir.path());
        let token = webhook_setup(&http, &node, &format!("{base}/in")).await;
        let mut acknowledged = Vec::new();
        for _ in 0..30 {
            acknowledged.push(create_key_at(&http, &node, &token).await);
        }
        // Kill it (SIGKILL) while a request is in flight (arrived, not yet answered).
        let in_flight = || receiver.count() > receiver.completed.lock().unwrap().len();
        for _ in 0..500 {
            if receiver.completed.lock().unwrap().len() >= 2 && in_flight() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(in_flight(), "[{backend:?}] no request was in flight");
        drop(node);
        let cut_off: Vec<_> = {
            let done = received_keys(&receiver);
            key_counts(&receiver.got.lock().unwrap()).into_keys().filter(|k| !done.contains_key(k)).collect()
        };
        assert!(!cut_off.is_empty());
        assert!(received_keys(&receiver).len() < 30, "[{backend:?}] everything was delivered before the kill");
        *receiver.delay.lock().unwrap() = std::time::Duration::ZERO;
        let node = spawn_gantry(&env_refs, dir.path());
        until_received(&receiver, &acknowledged, 30).await;
        // The requests cut off by the kill were sent again once their lease ended.
        let arrivals = key_counts(&receiver.got.lock().unwrap());
        for k in &cut_off {
            assert!(arrivals[k] >= 2, "[{backend:?}] {k} was cut off and never sent again");
        }
        // The last requests' outcomes are written just after the receiver has them.
        let succeeded = "{ webhookDeliveries(status: SUCCEEDED) { totalCount } }";
        let mut done = serde_json::Value::Null;
        for _ in 0..200 {
            done = gql_at(&http, &node, Some(&token), succeeded, json!({})).await;
            if done["data"]["webhookDeliveries"]["totalCount"].as_i64() >= Some(30) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let pending =
            gql_at(&http, &node, Some(&token), "{ webhookDeliveries(status: FAILED) { totalCount } }", json!({})).await;
        assert_eq!(pending["data"]["webhookDeliveries"]["totalCount"], 0, "{pending}");
        assert_eq!(done["data"]["webhookDeliveries"]["totalCount"], 30, "[{backend:?}] {done}");
        drop(node);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_deliver_each_event_once() {
    if !postgres_and_redis() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (database_url, name) = create_pg_database().await;
    let _database = crate::common::PgDatabase(name);
    let prefix = unique("gantry-twonodes-");
    let (receiver, base) = crate::webhooks::Receiver::start().await;
    let a = start_node(&database_url, &prefix, dir.path());
    let b = start_node(&database_url, &prefix, dir.path());
    let http = crate::common::http_client();
    let token = webhook_setup(&http, &a, &format!("{base}/in")).await;
    let mut ids = Vec::new();
    for i in 0..120 {
        let node = if i % 2 == 0 { &a } else { &b };
        ids.push(create_key_at(&http, node, &token).await);
    }
    until_received(&receiver, &ids, 30).await;
    // Every delivery is final and made once.
    let q = "{ webhookDeliveries(first: 1, status: SUCCEEDED) { totalCount } }";
    for _ in 0..200 {
        let d = gql_at(&http, &b, Some(&token), q, json!({})).await;
        if d["data"]["webhookDeliveries"]["totalCount"] == 120 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let d = gql_at(&http, &b, Some(&token), q, json!({})).await;
    assert_eq!(d["data"]["webhookDeliveries"]["totalCount"], 120, "{d}");
    let counts = received_keys(&receiver);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(receiver.count(), 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_type_changed_on_one_node_is_enforced_by_the_next_publish_on_another() {
    if !postgres_and_redis() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (database_url, name) = create_pg_database().await;
    let _database = crate::common::PgDatabase(name);
    let prefix = unique("gantry-types-");
    let a = start_node(&database_url, &prefix, dir.path());
    let b = start_node(&database_url, &prefix, dir.path());
    let http = crate::common::http_client();
    let token = admin_at(&http, &a).await;
    let loose = json!({ "type": "object" });
    let created = gql_at(
        &http,
        &a,
        Some(&token),
        "mutation($s: JSON!) { createEventType(input: {name: \"order.paid\", schema: $s}) { name } }",
        json!({ "s": loose }),
    )
    .await;
    assert_eq!(created["data"]["createEventType"]["name"], "order.paid", "{created}");
    let publish = async |node: &Node, payload: serde_json::Value| {
        gql_at(
            &http,
            node,
            Some(&token),
            "mutation($p: JSON!) { publishEvent(input: {type: \"order.paid\", payload: $p}) { event { id } } }",
            json!({ "p": payload }),
        )
        .await
    };
    // Node B publishes (and so holds the type with its schema), then node A tightens the schema:
    // B's very next publish is judged by the new one, and after the archive it is refused.
    let r = publish(&b, json!({ "order": 1 })).await;
    assert!(r["data"]["publishEvent"]["event"]["id"].is_string(), "{r}");
    let strict = json!({ "type": "object", "required": ["amount_cents"] });
    let updated = gql_at(
        &http,
        &a,
        Some(&token),
        "mutation($s: JSON!) { updateEventType(name: \"order.paid\", input: {schema: $s, sample: {amount_cents: 1}}) { name } }",
        json!({ "s": strict }),
    )
    .await;
    assert_eq!(updated["data"]["updateEventType"]["name"], "order.paid", "{updated}");
    // The change reaches B over the bus; until it has, B may still answer from its cache.
    let mut refused = serde_json::Value::Null;
    for _ in 0..100 {
        refused = publish(&b, json!({ "order": 2 })).await;
        if refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(refused["errors"][0]["extensions"]["field"], "payload", "{refused}");
    let r = publish(&b, json!({ "amount_cents": 5 })).await;
    assert!(r["data"]["publishEvent"]["event"]["id"].is_string(), "{r}");
    let archived =
        gql_at(&http, &a, Some(&token), "mutation { archiveEventType(name: \"order.paid\") { name } }", json!({}))
            .await;
    assert_eq!(archived["data"]["archiveEventType"]["name"], "order.paid", "{archived}");
    let mut refused = serde_json::Value::Null;
    for _ in 0..100 {
        refused = publish(&b, json!({ "amount_cents": 6 })).await;
        if refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused["errors"][0]["message"].as_str().unwrap_or_default().contains("archived"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_only_node_and_a_worker_process_split_the_work() {
    for backend in crate::common::backends() {
        let dir = tempfile::tempdir().unwrap();
        let (envs, _database) = backend_env(backend, "gantry-split-").await;
        let env_refs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (receiver, base) = crate::webhooks::Receiver::start().await;
        let http = crate::common::http_client();
        let api = spawn_gantry_with(&["serve", "--workers=false"], &env_refs, dir.path());
        let token = webhook_setup(&http, &api, &format!("{base}/in")).await;
        let key = create_key_at(&http, &api, &token).await;
        // The API node alone dispatches nothing: the event waits in the outbox.
        let d = gql_at(&http, &api, Some(&token), "{ webhookDeliveries { totalCount } }", json!({})).await;
        assert_eq!(d["data"]["webhookDeliveries"]["totalCount"], 0, "[{backend:?}] {d}");
        let events =
            gql_at(&http, &api, Some(&token), "{ events(types: [\"key.created\"]) { totalCount } }", json!({})).await;
        assert_eq!(events["data"]["events"]["totalCount"], 1, "{events}");
        // With Redis, a subscriber on the API node sees the worker process's attempts.
        let mut stream = None;
        if backend == crate::common::Backend::PostgresRedis {
            let e =
                gql_at(&http, &api, Some(&token), "{ webhookEndpoints { edges { node { id } } } }", json!({})).await;
            let endpoint = e["data"]["webhookEndpoints"]["edges"][0]["node"]["id"].as_str().unwrap().to_string();
            let mut sock = ws::connect_authed(&format!("ws://{}/graphql/ws", api.addr), &token).await;
            ws::subscribe(
                &mut sock,
                "d",
                &format!(
                    "subscription {{ webhookDelivered(webhookId: \"{endpoint}\") {{ status eventType attempt }} }}"
                ),
            )
            .await;
            // Live once an event raised after it comes back on the same socket.
            ws::subscribe(
                &mut sock,
                "sync",
                "subscription { events(types: [\"org.created\", \"key.revoked\"]) { type } }",
            )
            .await;
            crate::subscriptions::until_event(&mut sock, async || {
                let k = create_key_at(&http, &api, &token).await;
                gql_at(
                    &http,
                    &api,
                    Some(&token),
                    "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
                    json!({ "id": k }),
                )
                .await;
            })
            .await;
            stream = Some(sock);
        }
        // `gantry worker` delivers it.
        let mut worker = gantry_command(&["worker"], &env_refs, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gantry worker");
        until_received(&receiver, &[key], 30).await;
        if let Some(mut sock) = stream {
            loop {
                let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws::next(&mut sock))
                    .await
                    .expect("an attempt reaches the API node's subscriber")
                    .expect("message");
                if msg["id"] == "d" {
                    assert_eq!(msg["payload"]["data"]["webhookDelivered"]["status"], "SUCCEEDED", "{msg}");
                    assert_eq!(msg["payload"]["data"]["webhookDelivered"]["eventType"], "key.created");
                    break;
                }
            }
        }
        let _ = worker.kill();
        let _ = worker.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_tokens_are_revoked_on_every_node_and_a_refresh_raced_across_nodes_leaves_no_live_pair() {
    if !postgres_and_redis() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (database_url, name) = create_pg_database().await;
    let _database = crate::common::PgDatabase(name);
    let prefix = unique("gantry-multinode-");
    let a = start_node(&database_url, &prefix, dir.path());
    let b = start_node(&database_url, &prefix, dir.path());
    let http = crate::common::http_client();
    let gql = async |node: &Node, token: Option<&str>, query: &str, vars: serde_json::Value| -> serde_json::Value {
        let mut req =
            http.post(format!("http://{}/graphql", node.addr)).json(&json!({ "query": query, "variables": vars }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap().json().await.unwrap()
    };
    let token_post =
        async |node: &Node, client: &str, secret: &str, form: &[(&str, &str)]| -> (u16, serde_json::Value) {
            let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
            let resp = http
                .post(format!("http://{}/oauth/token", node.addr))
                .basic_auth(client, Some(secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json().await.unwrap())
        };
    let register = "mutation($e: String!) { register(input: {email: $e, password: \"correct horse battery\"}) { session { token } } }";
    let owner =
        gql(&a, None, register, json!({ "e": "owner@example.com" })).await["data"]["register"]["session"]["token"]
            .as_str()
            .unwrap()
            .to_string();
    let user =
        gql(&b, None, register, json!({ "e": "user@example.com" })).await["data"]["register"]["session"]["token"]
            .as_str()
            .unwrap()
            .to_string();
    let created = gql(
        &a,
        Some(&owner),
        "mutation { createApp(input: {name: \"Two Nodes\", description: \"d\", category: ANALYTICS, requestedScopes: [\"keys:read\"], redirectUris: [\"https://x.example.com/cb\"]}) { clientSecret app { id } } }",
        json!({}),
    )
    .await;
    let client = created["data"]["createApp"]["app"]["id"].as_str().unwrap().to_string();
    let secret = created["data"]["createApp"]["clientSecret"].as_str().unwrap().to_string();
    for m in ["submitApp", "approveApp", "publishApp"] {
        let r = gql(
            &a,
            Some(&owner),
            &format!("mutation($id: ID!) {{ {m}(id: $id) {{ status }} }}"),
            json!({ "id": client }),
        )
        .await;
        assert!(r.get("errors").is_none(), "{m}: {r}");
    }
    let issue = async || -> (serde_json::Value, String) {
        let r = gql(
            &b,
            Some(&user),
            "mutation($i: AuthorizeAppInput!) { authorizeApp(input: $i) { redirectTo installation { id } } }",
            json!({ "i": { "clientId": client } }),
        )
        .await;
        let to = url::Url::parse(r["data"]["authorizeApp"]["redirectTo"].as_str().unwrap()).unwrap();
        let code = to.query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string();
        let (status, tokens) = token_post(
            &a,
            &client,
            &secret,
            &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "https://x.example.com/cb")],
        )
        .await;
        assert_eq!(status, 200, "{tokens}");
        (tokens, r["data"]["authorizeApp"]["installation"]["id"].as_str().unwrap().to_string())
    };

    // Two refreshes of one token at the same instant, one on each node.
    let (tokens, installation) = issue().await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
    let (x, y) = tokio::join!(token_post(&a, &client, &secret, &form), token_post(&b, &client, &secret, &form));
    let outcomes = [x, y];
    assert!(outcomes.iter().all(|(s, _)| *s == 200 || *s == 400), "never a 500: {outcomes:?}");
    assert!(outcomes.iter().filter(|(s, _)| *s == 200).count() <= 1, "{outcomes:?}");
    assert!(outcomes.iter().any(|(s, b)| *s == 400 && b["error"] == "invalid_grant"), "{outcomes:?}");
    for (_, body) in outcomes.iter().filter(|(s, _)| *s == 200) {
        let r = gql(&b, body["access_token"].as_str(), "{ viewer { id } }", json!({})).await;
        assert_eq!(r["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "no live pair survives the race: {r}");
    }

    // An access token cached on node B stops there when node A uninstalls the app.
    let (tokens, _) = issue().await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let ok = gql(&b, Some(&access), "{ viewer { kind } }", json!({})).await;
    assert_eq!(ok["data"]["viewer"]["kind"], "OAUTH_APP", "{ok}");
    let r = gql(
        &a,
        Some(&user),
        "mutation($id: ID!) { uninstallApp(id: $id) { installation { id } } }",
        json!({ "id": installation }),
    )
    .await;
    assert!(r.get("errors").is_none(), "{r}");
    // The invalidation travels over Redis; poll B briefly for it to land (bounded).
    let mut refused = false;
    for _ in 0..50 {
        let r = gql(&b, Some(&access), "{ viewer { id } }", json!({})).await;
        if r["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED" {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "node B still serves a token uninstalled on node A");
}
