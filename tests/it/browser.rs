//! The playground in a real headless Chromium (playwright-core): enter a key, run a query and a
//! subscription, check the results on screen. Required in CI; elsewhere it runs when Chromium and
//! the playground's node_modules are present.

use serde_json::json;

use crate::common::{Backend, TestApp, in_ci};

/// The Chromium to drive, or `None` (a note) outside CI when it or playwright-core is missing.
fn chromium() -> Option<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let playwright = format!("{root}/playground/node_modules/playwright-core");
    if std::path::Path::new(&chromium).exists() && std::path::Path::new(&playwright).exists() {
        return Some(chromium);
    }
    assert!(!in_ci(), "CI=true but Chromium ({chromium}) or playwright-core ({playwright}) is missing");
    eprintln!("note: Chromium or playwright-core missing; browser test not run");
    None
}

/// Runs `playground/e2e/<script>` with `env` and Chromium; its stdout, or a failure with both outputs.
async fn e2e(script: &str, chromium: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(format!("{}/playground/e2e/{script}", env!("CARGO_MANIFEST_DIR"))).env("CHROMIUM_PATH", chromium);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
        .await
        .expect("browser test finishes within 120 s")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed: {}\n{stdout}\n{stderr}", failures(&stderr));
    stdout
}

/// The `FAIL …` lines a browser script printed, first, so that a shortened report still says
/// which step broke and why.
fn failures(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("FAIL")).collect();
    if lines.is_empty() { "(no FAIL line; see below)".to_owned() } else { lines.join(" | ") }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_runs_a_query_and_a_subscription_in_chromium() {
    let Some(chromium) = chromium() else { return };
    let app = TestApp::new(Backend::SqliteMemory).await;
    let s = app.register("browser@example.com").await;
    let (secret, key_id) = app.create_key_with(&s.token, json!({ "name": "browser", "scopes": ["*"] })).await;
    let url = format!("http://{}", app.addr);
    let env = [("GANTRY_URL", url.as_str()), ("GANTRY_TOKEN", &secret), ("GANTRY_EXPECT_VIEWER_ID", &key_id)];
    let stdout = e2e("playground.mjs", &chromium, &env).await;
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
    // The subscription on screen was fed by real key.created events from the script's mutations.
    let created = app.gql_ok(Some(&s.token), "{ apiKeys(first: 100) { edges { node { name } } } }", json!({})).await;
    assert!(created.to_string().contains("from-e2e"));
}

/// Every sample operation of the playground parses and validates against `schema.graphql`
/// (graphql-js, the playground's own GraphQL library), with its required variables given.
#[tokio::test]
async fn the_playground_samples_match_the_schema() {
    let root = env!("CARGO_MANIFEST_DIR");
    let graphql = format!("{root}/playground/node_modules/graphql");
    if !std::path::Path::new(&graphql).exists() {
        assert!(!in_ci(), "CI=true but the playground's node_modules ({graphql}) are missing");
        eprintln!("note: playground node_modules missing; samples not validated");
        return;
    }
    let out = tokio::process::Command::new("node")
        .arg(format!("{root}/playground/e2e/samples.mjs"))
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "playground samples do not match the schema:\n{stdout}\n{stderr}");
    let n: usize =
        stdout.trim().strip_prefix("samples: ").and_then(|s| s.strip_suffix(" valid")).unwrap().parse().unwrap();
    assert!(n >= 45, "{stdout}");
}

/// The playground's code export (curl, JavaScript fetch, Python requests) reproduces the
/// operation exactly: each snippet, run with its HTTP call captured, sends the same body and
/// headers — quotes, newlines, unicode and `$` included.
#[tokio::test]
async fn the_playground_exports_code_that_sends_the_same_request() {
    let root = env!("CARGO_MANIFEST_DIR");
    if !std::path::Path::new(&format!("{root}/playground/node_modules")).exists() {
        assert!(!in_ci(), "CI=true but the playground's node_modules are missing");
        eprintln!("note: playground node_modules missing; export not tested");
        return;
    }
    let out = tokio::process::Command::new("node")
        .arg(format!("{root}/playground/e2e/export.mjs"))
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the exported code does not reproduce the request:\n{stdout}\n{stderr}");
    let passed: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("export: ")?.strip_suffix(" passed, 0 failed")?.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 20, "{stdout}");
}

/// The OAuth authorization flow in a real headless Chromium: the login page, the consent page,
/// Allow, and the landing on the app's redirect URI with a code that the token endpoint takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth_login_and_consent_pages_complete_the_flow_in_chromium() {
    let Some(chromium) = chromium() else { return };
    let redirect = "http://localhost:9/callback";
    let app = TestApp::new(Backend::SqliteMemory).await;
    let admin = app.register("admin@example.com").await;
    let dev = app.register("dev@example.com").await;
    let r = app
        .gql_ok(
            Some(&dev.token),
            "mutation($i: CreateAppInput!) { createApp(input: $i) { clientSecret app { id } } }",
            json!({ "i": { "name": "Browser App", "description": "Signs in", "category": "AUTOMATION",
                "requestedScopes": ["usage:read"], "redirectUris": [redirect] } }),
        )
        .await;
    let id = r["createApp"]["app"]["id"].as_str().unwrap().to_string();
    let secret = r["createApp"]["clientSecret"].as_str().unwrap().to_string();
    for (who, m) in [(&dev, "submitApp"), (&admin, "approveApp"), (&dev, "publishApp")] {
        app.gql_ok(
            Some(&who.token),
            &format!("mutation($id: ID!) {{ {m}(id: $id) {{ status }} }}"),
            json!({ "id": id }),
        )
        .await;
    }
    app.register("user@example.com").await;
    let authorize = format!(
        "http://{}/oauth/authorize?response_type=code&client_id={id}&redirect_uri={}&state=from-chromium",
        app.addr,
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    let env = [
        ("AUTHORIZE_URL", authorize.as_str()),
        ("REDIRECT_PREFIX", redirect),
        ("GANTRY_EMAIL", "user@example.com"),
        ("GANTRY_PASSWORD", "correct horse battery"),
    ];
    let stdout = e2e("oauth.mjs", &chromium, &env).await;
    assert!(stdout.contains("consent page scopes: usage:read"), "{stdout}");
    assert!(stdout.contains("STATE=from-chromium"), "{stdout}");
    let code = stdout.lines().find_map(|l| l.strip_prefix("CODE=")).unwrap().to_string();
    let resp = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}",
            url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["access_token"].as_str().unwrap().starts_with("gko_at_"), "{body}");
}

/// The REST API reference in a real headless Chromium: it loads offline, lists the routes, and
/// "try it out" executes a call with a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_reference_lists_the_routes_and_tries_a_call_in_chromium() {
    let Some(chromium) = chromium() else { return };
    let app = TestApp::new(Backend::SqliteMemory).await;
    let s = app.register("docs@example.com").await;
    let (secret, key_id) = app.create_key_with(&s.token, json!({ "name": "docs", "scopes": ["keys:read"] })).await;
    let url = format!("http://{}", app.addr);
    let env = [("GANTRY_URL", url.as_str()), ("GANTRY_TOKEN", &secret), ("GANTRY_EXPECT_KEY_ID", &key_id)];
    let stdout = e2e("docs.mjs", &chromium, &env).await;
    assert!(stdout.contains("docs-e2e: 1 passed, 0 failed"), "{stdout}");
}

/// The developer console (`/console/`, served from the binary) in a real headless Chromium, on
/// every backend: `console/e2e/run-all.mjs` walks the main journeys — sign in, create a key and
/// see its secret once; a webhook endpoint against a local receiver, a test event whose attempt
/// appears live; a plan change with its proration preview and invoice; an app reviewed by the
/// administrator and installed through the OAuth consent; the dashboard's charts, usage, team,
/// settings and admin pages — writing a screenshot of each page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_walks_the_main_journeys_in_chromium() {
    let Some(chromium) = chromium() else { return };
    let root = env!("CARGO_MANIFEST_DIR");
    let playwright = format!("{root}/console/node_modules/playwright-core");
    assert!(std::path::Path::new(&playwright).exists(), "the build installs the console's packages ({playwright})");
    for backend in crate::common::backends() {
        let app = TestApp::with_config(backend, |c| {
            c.webhook_allow_http = true;
            c.webhook_allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
        })
        .await;
        // The browser, the receiver and the console's charts live on the wall clock: the server's
        // clock follows it for this test.
        let clock = app.clock.clone();
        let following = tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_millis(5));
            loop {
                every.tick().await;
                clock.set_ms(chrono::Utc::now().timestamp_millis());
            }
        });
        let url = format!("http://{}", app.addr);
        let shots = format!("{}/console-screenshots/{backend:?}", env!("CARGO_TARGET_TMPDIR"));
        // Only this run's screenshots are counted below.
        let _ = std::fs::remove_dir_all(&shots);
        let mut cmd = tokio::process::Command::new("node");
        cmd.arg(format!("{root}/console/e2e/run-all.mjs"))
            .env("CHROMIUM_PATH", &chromium)
            .env("GANTRY_URL", &url)
            .env("CONSOLE_SCREENSHOTS", &shots)
            .env_remove("GANTRY_ADMIN_EMAIL")
            .env_remove("GANTRY_ADMIN_PASSWORD");
        let out = tokio::time::timeout(std::time::Duration::from_secs(600), cmd.output())
            .await
            .expect("the console's journeys finish within 600 s")
            .expect("node runs");
        following.abort();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Each step's timing, shown with `--nocapture`.
        println!("[{backend:?}]\n{stdout}");
        assert!(
            out.status.success(),
            "[{backend:?}] the console's journeys failed: {}\n{stdout}\n{stderr}",
            failures(&stderr)
        );
        let passed: usize = stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("console-e2e: ")?.strip_suffix(" passed, 0 failed")?.parse().ok())
            .unwrap_or(0);
        assert!(passed >= 40, "[{backend:?}] too few steps passed:\n{stdout}");
        // What the journeys did is in the server, not only on screen: the app they reviewed,
        // approved and published is in the public marketplace.
        let (status, listed) = app.rest("GET", "/apps", None, None).await;
        assert_eq!(status, 200, "{listed}");
        assert!(!listed["data"].as_array().unwrap().is_empty(), "[{backend:?}] no published app: {listed}");
        let pages = std::fs::read_dir(&shots).map(|d| d.count()).unwrap_or(0);
        assert!(pages >= 10, "[{backend:?}] a screenshot of each page: {pages} in {shots}");
    }
}
