//! Secrets never reach the logs, even at debug level.

use std::io::Read;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_passwords_and_key_secrets_never_appear_in_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("serve")
        .env("GANTRY_BIND", "127.0.0.1:0")
        .env("GANTRY_DATA_DIR", dir.path())
        .env("GANTRY_LOG_FORMAT", "json")
        .env("GANTRY_LOG", "debug")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gantry");
    let mut stdout = child.stdout.take().unwrap();
    // Read lines until the address appears, keeping everything for the final check.
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
        all
    });
    let addr = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("address");
    let http = crate::common::http_client();
    let gql = async |token: Option<&str>, query: &str, vars: Value| -> Value {
        let mut req = http.post(format!("http://{addr}/graphql")).json(&json!({ "query": query, "variables": vars }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap().json().await.unwrap()
    };
    let password = "very-secret-password-123";
    let reg = gql(None, "mutation($p: String!) { register(input: {email: \"log@example.com\", password: $p}) { session { token refreshToken } } }", json!({ "p": password })).await;
    let token = reg["data"]["register"]["session"]["token"].as_str().unwrap().to_string();
    let refresh = reg["data"]["register"]["session"]["refreshToken"].as_str().unwrap().to_string();
    let key =
        gql(Some(&token), "mutation { createApiKey(input: {name: \"k\", scopes: [\"*\"]}) { secret } }", json!({}))
            .await;
    let secret = key["data"]["createApiKey"]["secret"].as_str().unwrap().to_string();
    gql(Some(&secret), "{ viewer { id } }", json!({})).await;
    gql(Some("gk_live_definitelynotakeybutsecretlooking"), "{ viewer { id } }", json!({})).await;
    gql(
        None,
        "mutation($p: String!) { login(input: {email: \"log@example.com\", password: $p}) { session { token } } }",
        json!({ "p": password }),
    )
    .await;
    gql(Some(&secret), "mutation($k: String!) { verifyApiKey(input: {key: $k}) { valid } }", json!({ "k": secret }))
        .await;

    // SIGTERM: graceful shutdown flushes and exits 0.
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    let logs = reader.join().unwrap();
    assert!(logs.contains("stopped cleanly"), "shutdown was graceful");
    assert!(logs.contains("request_id"), "log lines carry request ids");
    for (what, s) in [
        ("session token", &token),
        ("refresh token", &refresh),
        ("key secret", &secret),
        ("password", &password.to_string()),
        ("bad key", &"definitelynotakeybutsecretlooking".to_string()),
    ] {
        assert!(!logs.contains(s.as_str()), "the {what} appeared in the logs");
    }
}
