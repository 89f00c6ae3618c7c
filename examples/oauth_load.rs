//! The OAuth benchmark's client (`benches/oauth.sh`): grants per second at the token endpoint.
//!
//! - `exchange`: consents (through `authorizeApp`, untimed) to COUNT authorization requests,
//!   then exchanges every code at the token endpoint with CONCURRENCY requests in flight, timed.
//! - `refresh`: CONCURRENCY chains, each started from one code exchange, refresh their own latest
//!   refresh token for SECS seconds (each refresh uses the token the previous one returned).
//!
//! Prints one JSON line: the mode, grants, errors, seconds and grants per second.
//!
//! Usage: `oauth_load BASE_URL CLIENT_ID CLIENT_SECRET SESSION MODE [CONCURRENCY] [COUNT_OR_SECS]`

use std::time::{Duration, Instant};

use serde_json::{Value, json};

const REDIRECT: &str = "https://bench.example.com/callback";

struct Ctx {
    http: reqwest::Client,
    base: String,
    client_id: String,
    secret: String,
    session: String,
}

impl Ctx {
    async fn code(&self) -> String {
        let q = "mutation($i: AuthorizeAppInput!) { authorizeApp(input: $i) { redirectTo } }";
        let r: Value = self
            .http
            .post(format!("{}/graphql", self.base))
            .bearer_auth(&self.session)
            .json(&json!({ "query": q, "variables": { "i": { "clientId": self.client_id, "redirectUri": REDIRECT } } }))
            .send()
            .await
            .expect("authorizeApp")
            .json()
            .await
            .expect("JSON");
        let to = r["data"]["authorizeApp"]["redirectTo"].as_str().unwrap_or_else(|| panic!("no redirect: {r}"));
        let url = reqwest::Url::parse(to).expect("redirect URL");
        url.query_pairs().find(|(k, _)| k == "code").expect("code").1.to_string()
    }

    async fn token(&self, form: &[(&str, &str)]) -> Option<Value> {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let resp = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .basic_auth(&self.client_id, Some(&self.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json().await.ok()
    }

    async fn exchange(&self, code: &str) -> Option<Value> {
        self.token(&[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT)]).await
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let usage =
        "usage: oauth_load BASE_URL CLIENT_ID CLIENT_SECRET SESSION exchange|refresh [CONCURRENCY] [COUNT_OR_SECS]";
    let mut args = std::env::args().skip(1);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ctx = std::rc::Rc::new(Ctx {
        http: reqwest::Client::new(),
        base: args.next().expect(usage),
        client_id: args.next().expect(usage),
        secret: args.next().expect(usage),
        session: args.next().expect(usage),
    });
    let mode = args.next().expect(usage);
    let concurrency: usize = args.next().map(|a| a.parse().expect("CONCURRENCY")).unwrap_or(16);
    let amount: f64 = args.next().map(|a| a.parse().expect("COUNT_OR_SECS")).unwrap_or(10.0);
    let local = tokio::task::LocalSet::new();
    let (grants, errors, secs) = local
        .run_until(async move {
            match mode.as_str() {
                "exchange" => {
                    let count = amount as usize;
                    let mut codes = Vec::with_capacity(count);
                    for _ in 0..count {
                        codes.push(ctx.code().await);
                    }
                    let per = count.div_ceil(concurrency);
                    let started = Instant::now();
                    let tasks: Vec<_> = codes
                        .chunks(per)
                        .map(|chunk| {
                            let ctx = ctx.clone();
                            let chunk = chunk.to_vec();
                            tokio::task::spawn_local(async move {
                                let mut ok = 0u64;
                                for c in &chunk {
                                    ok += ctx.exchange(c).await.is_some() as u64;
                                }
                                (ok, chunk.len() as u64 - ok)
                            })
                        })
                        .collect();
                    let mut totals = (0, 0);
                    for t in tasks {
                        let (ok, bad) = t.await.expect("task");
                        totals.0 += ok;
                        totals.1 += bad;
                    }
                    (totals.0, totals.1, started.elapsed().as_secs_f64())
                }
                "refresh" => {
                    let mut starts = Vec::new();
                    for _ in 0..concurrency {
                        let code = ctx.code().await;
                        let t = ctx.exchange(&code).await.expect("first exchange");
                        starts.push(t["refresh_token"].as_str().expect("refresh token").to_string());
                    }
                    let deadline = Instant::now() + Duration::from_secs_f64(amount);
                    let started = Instant::now();
                    let tasks: Vec<_> = starts
                        .into_iter()
                        .map(|mut refresh| {
                            let ctx = ctx.clone();
                            tokio::task::spawn_local(async move {
                                let (mut ok, mut bad) = (0u64, 0u64);
                                while Instant::now() < deadline {
                                    match ctx
                                        .token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
                                        .await
                                    {
                                        Some(t) => {
                                            ok += 1;
                                            refresh = t["refresh_token"].as_str().expect("rotated").to_string();
                                        }
                                        None => {
                                            bad += 1;
                                            break;
                                        }
                                    }
                                }
                                (ok, bad)
                            })
                        })
                        .collect();
                    let mut totals = (0, 0);
                    for t in tasks {
                        let (ok, bad) = t.await.expect("task");
                        totals.0 += ok;
                        totals.1 += bad;
                    }
                    (totals.0, totals.1, started.elapsed().as_secs_f64())
                }
                other => panic!("unknown mode {other}: {usage}"),
            }
        })
        .await;
    println!(
        "{}",
        json!({ "grants": grants, "errors": errors, "secs": secs, "per_sec": grants as f64 / secs.max(1e-9) })
    );
}
