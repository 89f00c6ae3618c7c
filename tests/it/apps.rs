//! Marketplace apps: the lifecycle an app developer and a platform administrator walk, what the
//! marketplace lists and finds, and reviews whose averages stay exact under concurrent writes.

use serde_json::{Value, json};

use crate::common::{Session, TestApp, backends, code};

const CREATE: &str = "mutation($i: CreateAppInput!) { createApp(input: $i) { clientSecret app { id slug status } } }";

fn app_input(name: &str, description: &str, category: &str) -> Value {
    json!({
        "name": name, "description": description, "category": category,
        "requestedScopes": ["keys:read", "usage:read"],
        "redirectUris": ["https://app.example.com/callback", "http://localhost:8080/cb"],
        "features": ["Post messages"],
    })
}

async fn create_app(app: &TestApp, token: &str, input: Value) -> (String, Option<String>) {
    let r = app.gql_ok(Some(token), CREATE, json!({ "i": input })).await;
    let id = r["createApp"]["app"]["id"].as_str().unwrap().to_string();
    (id, r["createApp"]["clientSecret"].as_str().map(str::to_string))
}

/// Draft → submitted → approved → published, by the developer and the administrator.
async fn publish(app: &TestApp, dev: &str, admin: &str, id: &str) {
    let v = json!({ "id": id });
    app.gql_ok(Some(dev), "mutation($id: ID!) { submitApp(id: $id) { status } }", v.clone()).await;
    app.gql_ok(Some(admin), "mutation($id: ID!) { approveApp(id: $id) { status } }", v.clone()).await;
    let r = app.gql_ok(Some(dev), "mutation($id: ID!) { publishApp(id: $id) { status publishedAt } }", v).await;
    assert_eq!(r["publishApp"]["status"], "ACTIVE");
}

/// The first user (a platform administrator) and a developer with an organization of their own.
async fn admin_and_dev(app: &TestApp) -> (Session, Session) {
    let admin = app.register("admin@example.com").await;
    app.lift_starter_limits(&admin.token).await;
    let dev = app.register("dev@example.com").await;
    (admin, dev)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_walks_its_lifecycle_and_every_step_is_an_event_and_an_audit_entry() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let (admin, dev) = admin_and_dev(&app).await;
        let (id, secret) =
            create_app(&app, &dev.token, app_input("Slack Integration", "Send messages to Slack", "COMMUNICATION"))
                .await;
        let secret = secret.expect("a confidential app gets a client secret");
        assert!(secret.starts_with("gko_cs_") && secret.len() > 40, "{secret}");
        let v = json!({ "id": id });

        // A draft is its owner's only: NOT_FOUND to another user, absent from the marketplace.
        let other = app.register("other@example.com").await;
        let q =
            "query($id: ID!) { app(id: $id) { id status oauthConfig { clientId redirectUris secrets { lastFour } } } }";
        let r = app.gql(Some(&other.token), q, v.clone()).await;
        assert_eq!(code(&r), "NOT_FOUND", "[{backend:?}] {r}");
        let r = app.gql_ok(Some(&dev.token), q, v.clone()).await;
        assert_eq!(r["app"]["status"], "DRAFT");
        assert_eq!(r["app"]["oauthConfig"]["clientId"], id.as_str());
        assert_eq!(r["app"]["oauthConfig"]["secrets"][0]["lastFour"], &secret[secret.len() - 4..]);

        // Illegal steps are CONFLICT naming the rule; only administrators review.
        let r = app.gql(Some(&dev.token), "mutation($id: ID!) { publishApp(id: $id) { status } }", v.clone()).await;
        assert_eq!(code(&r), "CONFLICT", "[{backend:?}] {r}");
        assert!(r["errors"][0]["message"].as_str().unwrap().contains("only an APPROVED app can be published"), "{r}");
        app.gql_ok(Some(&dev.token), "mutation($id: ID!) { submitApp(id: $id) { status } }", v.clone()).await;
        let r = app.gql(Some(&dev.token), "mutation($id: ID!) { approveApp(id: $id) { status } }", v.clone()).await;
        assert_eq!(code(&r), "FORBIDDEN", "[{backend:?}] {r}");
        let r = app
            .gql(
                Some(&dev.token),
                "mutation($id: ID!) { updateApp(id: $id, input: {name: \"Renamed\"}) { name } }",
                v.clone(),
            )
            .await;
        assert_eq!(code(&r), "CONFLICT", "an app under review cannot change: {r}");

        // The review queue shows it; a rejection carries a reason the owner sees.
        let r = app.gql_ok(Some(&admin.token), "{ pendingApps { totalCount edges { node { id } } } }", json!({})).await;
        assert_eq!(r["pendingApps"]["edges"][0]["node"]["id"], id.as_str());
        let r = app
            .gql(Some(&admin.token), "mutation($id: ID!) { rejectApp(id: $id, reason: \"\") { status } }", v.clone())
            .await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "a rejection needs a reason: {r}");
        app.gql_ok(
            Some(&admin.token),
            "mutation($id: ID!) { rejectApp(id: $id, reason: \"Add a privacy policy link\") { status } }",
            v.clone(),
        )
        .await;
        let r =
            app.gql_ok(Some(&dev.token), "query($id: ID!) { app(id: $id) { status reviewReason } }", v.clone()).await;
        assert_eq!(r["app"]["status"], "REJECTED");
        assert_eq!(r["app"]["reviewReason"], "Add a privacy policy link");

        // Fixed and resubmitted, approved, published: now anyone sees it, even without signing in.
        app.gql_ok(
            Some(&dev.token),
            "mutation($id: ID!) { updateApp(id: $id, input: {supportUrl: \"https://example.com/support\"}) { supportUrl } }",
            v.clone(),
        )
        .await;
        publish(&app, &dev.token, &admin.token, &id).await;
        let r = app
            .gql_ok(
                None,
                "query($id: ID!) { app(id: $id) { status oauthConfig { clientId } developer { id } } }",
                v.clone(),
            )
            .await;
        assert_eq!(r["app"]["status"], "ACTIVE");
        assert_eq!(r["app"]["oauthConfig"], Value::Null, "only the owner sees the client settings");
        assert_eq!(r["app"]["developer"]["id"], dev.org_id.as_str());
        let r = app
            .gql(
                Some(&other.token),
                "mutation($id: ID!) { updateApp(id: $id, input: {name: \"Mine\"}) { name } }",
                v.clone(),
            )
            .await;
        assert_eq!(code(&r), "FORBIDDEN", "[{backend:?}] another organization cannot change it: {r}");

        // An ACTIVE app cannot be deleted; deprecated it can.
        let r = app.gql(Some(&dev.token), "mutation($id: ID!) { deleteApp(id: $id) { deletedId } }", v.clone()).await;
        assert_eq!(code(&r), "CONFLICT", "{r}");
        app.gql_ok(
            Some(&dev.token),
            "mutation($id: ID!) { deprecateApp(id: $id, reason: \"v2 replaces it\") { status } }",
            v.clone(),
        )
        .await;
        let r =
            app.gql_ok(Some(&dev.token), "mutation($id: ID!) { deleteApp(id: $id) { deletedId } }", v.clone()).await;
        assert_eq!(r["deleteApp"]["deletedId"], id.as_str());

        // Every step is an event of the owner's organization, in order, and an audit entry.
        let r = app
            .gql_ok(
                Some(&dev.token),
                "{ events(first: 50, types: [\"app.*\"]) { edges { node { type data } } } }",
                json!({}),
            )
            .await;
        let mut types: Vec<String> = r["events"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["type"].as_str().unwrap().to_string())
            .collect();
        types.reverse();
        assert_eq!(
            types,
            [
                "app.created",
                "app.submitted",
                "app.rejected",
                "app.updated",
                "app.submitted",
                "app.approved",
                "app.published",
                "app.deprecated",
                "app.deleted"
            ],
            "[{backend:?}]"
        );
        // Each is in the catalog with a schema its payloads match, and no payload holds the secret.
        let catalog = app.gql_ok(Some(&dev.token), "{ eventTypes { name schema } }", json!({})).await;
        for e in r["events"]["edges"].as_array().unwrap() {
            let name = e["node"]["type"].as_str().unwrap();
            let entry = catalog["eventTypes"].as_array().unwrap().iter().find(|t| t["name"] == name);
            let schema = &entry.unwrap_or_else(|| panic!("{name} is not in the catalog"))["schema"];
            let validator = jsonschema::validator_for(schema).unwrap();
            assert!(validator.is_valid(&e["node"]["data"]), "{name}: {} does not match its schema", e["node"]["data"]);
        }
        assert!(!r.to_string().contains(&secret), "no secrets in events");
        let rejected =
            r["events"]["edges"].as_array().unwrap().iter().find(|e| e["node"]["type"] == "app.rejected").unwrap();
        assert_eq!(rejected["node"]["data"]["reason"], "Add a privacy policy link");
        assert_eq!(rejected["node"]["data"]["app"]["status"], "REJECTED");
        let r = app
            .gql_ok(Some(&dev.token), "{ auditLog(first: 50) { edges { node { action actorId } } } }", json!({}))
            .await;
        let audit: Vec<(String, String)> = r["auditLog"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["node"]["action"].as_str().unwrap().into(), e["node"]["actorId"].as_str().unwrap().into()))
            .collect();
        assert!(
            audit.contains(&("app.approved".into(), admin.user_id.clone())),
            "the reviewer is the actor: {audit:?}"
        );
        assert!(audit.contains(&("app.created".into(), dev.user_id.clone())), "{audit:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_app_input_is_refused_naming_the_field_and_slugs_are_unique() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let (_admin, dev) = admin_and_dev(&app).await;
        let cases = [
            (json!({ "name": "" }), "name"),
            (json!({ "slug": "Not A Slug" }), "slug"),
            (json!({ "requestedScopes": ["*"] }), "scopes"),
            (json!({ "requestedScopes": ["nope:read"] }), "scopes"),
            (json!({ "redirectUris": ["http://app.example.com/cb"] }), "redirectUris"),
            (json!({ "redirectUris": ["https://app.example.com/cb#frag"] }), "redirectUris"),
            (json!({ "redirectUris": ["/relative"] }), "redirectUris"),
            (json!({ "iconUrl": "javascript:alert(1)" }), "iconUrl"),
            (json!({ "pricing": { "model": "FIXED" } }), "pricing.amount"),
            (json!({ "pricing": { "model": "FREE", "amount": 500 } }), "pricing.amount"),
            (json!({ "pricing": { "model": "FIXED", "amount": 900, "currency": "usd" } }), "pricing.currency"),
            (json!({ "accessTokenLifetime": 10 }), "accessTokenLifetime"),
            (json!({ "refreshTokenLifetime": 999999999 }), "refreshTokenLifetime"),
            (json!({ "version": "" }), "version"),
        ];
        for (patch, field) in cases {
            let mut input = app_input("Good App", "Does good things", "ANALYTICS");
            for (k, v) in patch.as_object().unwrap() {
                input[k] = v.clone();
            }
            let r = app.gql(Some(&dev.token), CREATE, json!({ "i": input })).await;
            assert_eq!(code(&r), "BAD_USER_INPUT", "[{backend:?}] {input}: {r}");
            assert_eq!(r["errors"][0]["extensions"]["field"], field, "[{backend:?}] {input}: {r}");
        }
        // Nothing was written by the refusals.
        let r = app.gql_ok(Some(&dev.token), "{ myApps { totalCount } }", json!({})).await;
        assert_eq!(r["myApps"]["totalCount"], 0);

        // The slug comes from the name, and a second app cannot take it.
        let (_, _) = create_app(&app, &dev.token, app_input("Good App!", "Does good things", "ANALYTICS")).await;
        let r = app
            .gql_ok(
                Some(&dev.token),
                "{ myApps { edges { node { slug pricing { model amount currency } } } } }",
                json!({}),
            )
            .await;
        assert_eq!(r["myApps"]["edges"][0]["node"]["slug"], "good-app");
        assert_eq!(
            r["myApps"]["edges"][0]["node"]["pricing"],
            json!({ "model": "FREE", "amount": null, "currency": "USD" })
        );
        let r = app.gql(Some(&dev.token), CREATE, json!({ "i": app_input("Good App", "Again", "ANALYTICS") })).await;
        assert_eq!(code(&r), "CONFLICT", "[{backend:?}] {r}");
        assert!(r["errors"][0]["message"].as_str().unwrap().contains("good-app"), "{r}");

        // A public client has no secret and cannot rotate one.
        let mut public = app_input("Mobile", "A phone app", "AUTOMATION");
        public["clientType"] = json!("PUBLIC");
        let (id, secret) = create_app(&app, &dev.token, public).await;
        assert_eq!(secret, None);
        let r = app
            .gql(
                Some(&dev.token),
                "mutation($id: ID!) { rotateAppClientSecret(id: $id) { clientSecret } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(code(&r), "CONFLICT", "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_client_secret_keeps_the_previous_one_until_its_expiry() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let (_admin, dev) = admin_and_dev(&app).await;
        let (id, first) = create_app(&app, &dev.token, app_input("Rotator", "Rotates secrets", "SECURITY")).await;
        let first = first.unwrap();
        let r = app
            .gql_ok(
                Some(&dev.token),
                "mutation($id: ID!) { rotateAppClientSecret(id: $id, expireOldInSeconds: 3600) { clientSecret previousSecretExpiresAt } }",
                json!({ "id": id }),
            )
            .await;
        let second = r["rotateAppClientSecret"]["clientSecret"].as_str().unwrap().to_string();
        assert_ne!(second, first);
        let r = app
            .gql_ok(
                Some(&dev.token),
                "query($id: ID!) { app(id: $id) { oauthConfig { secrets { lastFour expiresAt } } } }",
                json!({ "id": id }),
            )
            .await;
        let secrets = r["app"]["oauthConfig"]["secrets"].as_array().unwrap().clone();
        assert_eq!(secrets.len(), 2, "[{backend:?}] {secrets:?}");
        assert_eq!(secrets[0]["lastFour"], &second[second.len() - 4..]);
        assert_eq!(secrets[0]["expiresAt"], Value::Null);
        assert_eq!(secrets[1]["lastFour"], &first[first.len() - 4..]);
        assert!(secrets[1]["expiresAt"].is_string());
        // Rotating again with no grace retires both earlier secrets at once.
        app.gql_ok(
            Some(&dev.token),
            "mutation($id: ID!) { rotateAppClientSecret(id: $id) { clientSecret } }",
            json!({ "id": id }),
        )
        .await;
        let r = app
            .gql_ok(
                Some(&dev.token),
                "query($id: ID!) { app(id: $id) { oauthConfig { secrets { lastFour } } } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(r["app"]["oauthConfig"]["secrets"].as_array().unwrap().len(), 1, "[{backend:?}] {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_marketplace_finds_filters_sorts_and_pages_active_apps_the_same_on_both_backends() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let (admin, dev) = admin_and_dev(&app).await;
        let specs = [
            ("Slack Notifier", "Send notifications to Slack channels", "COMMUNICATION", "FREE"),
            ("Analytics Pro", "Dashboards for your API traffic", "ANALYTICS", "FIXED"),
            ("Backup Vault", "Encrypted storage of your exports", "STORAGE", "USAGE_BASED"),
            ("Notification Hub", "Route notifications anywhere, e-mail included", "COMMUNICATION", "FREEMIUM"),
        ];
        let mut ids = Vec::new();
        for (name, description, category, pricing) in specs {
            let mut input = app_input(name, description, category);
            input["pricing"] = if pricing == "FREE" {
                json!({ "model": "FREE" })
            } else {
                json!({ "model": pricing, "amount": 1900 })
            };
            let (id, _) = create_app(&app, &dev.token, input).await;
            publish(&app, &dev.token, &admin.token, &id).await;
            ids.push(id);
        }
        // A draft never shows.
        create_app(&app, &dev.token, app_input("Hidden Notifier", "Notifications, unpublished", "COMMUNICATION")).await;

        let q = "query($s: String, $c: AppCategory, $p: AppPricingModel, $r: Float, $sort: MarketplaceSort, $f: Boolean, $first: Int, $after: String) {
            marketplaceApps(search: $s, category: $c, pricingModel: $p, minRating: $r, sort: $sort, featured: $f, first: $first, after: $after) {
                totalCount pageInfo { hasNextPage endCursor } edges { node { name } } } }";
        let names = |r: &Value| -> Vec<String> {
            r["marketplaceApps"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        // Words of name or description, every word required, each as a prefix, any case.
        let r = app.gql_ok(None, q, json!({ "s": "notif", "sort": "NEWEST" })).await;
        assert_eq!(names(&r), ["Notification Hub", "Slack Notifier"], "[{backend:?}]");
        let r = app.gql_ok(None, q, json!({ "s": "SLACK channels" })).await;
        assert_eq!(names(&r), ["Slack Notifier"], "[{backend:?}]");
        let r = app.gql_ok(None, q, json!({ "s": "e-mail" })).await;
        assert_eq!(names(&r), ["Notification Hub"], "[{backend:?}] punctuation splits words");
        let r = app.gql_ok(None, q, json!({ "s": "slack dashboards" })).await;
        assert_eq!(names(&r), Vec::<String>::new(), "[{backend:?}]");
        let r = app.gql_ok(None, q, json!({ "s": "\"OR * NEAR(" })).await;
        assert_eq!(names(&r).len(), 0, "[{backend:?}] search syntax is not interpreted");
        // Filters.
        let r = app.gql_ok(None, q, json!({ "c": "COMMUNICATION", "sort": "NEWEST" })).await;
        assert_eq!(names(&r), ["Notification Hub", "Slack Notifier"]);
        let r = app.gql_ok(None, q, json!({ "p": "USAGE_BASED" })).await;
        assert_eq!(names(&r), ["Backup Vault"]);

        // Ratings from three reviewers: Analytics 5, 4 (4.5); Backup 3; Slack 5, 5, 4 (4.667).
        let reviewers = [
            app.register("r1@example.com").await,
            app.register("r2@example.com").await,
            app.register("r3@example.com").await,
        ];
        let review = "mutation($a: ID!, $r: Int!) { submitAppReview(appId: $a, rating: $r) { created } }";
        for (i, ratings) in [(1usize, vec![5, 4]), (2, vec![3]), (0, vec![5, 5, 4])] {
            for (who, rating) in ratings.into_iter().enumerate() {
                app.gql_ok(Some(&reviewers[who].token), review, json!({ "a": ids[i], "r": rating })).await;
            }
        }
        let r = app.gql_ok(None, q, json!({ "sort": "RATING" })).await;
        assert_eq!(names(&r), ["Slack Notifier", "Analytics Pro", "Backup Vault", "Notification Hub"], "[{backend:?}]");
        let r = app.gql_ok(None, q, json!({ "r": 4.5, "sort": "RATING" })).await;
        assert_eq!(names(&r), ["Slack Notifier", "Analytics Pro"], "[{backend:?}] 4.5 is at least 4.5");

        // Paging by cursor through the rating order, two at a time, with no repeats or gaps.
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let r = app.gql_ok(None, q, json!({ "sort": "RATING", "first": 2, "after": after })).await;
            assert_eq!(r["marketplaceApps"]["totalCount"], 4);
            seen.extend(names(&r));
            if !r["marketplaceApps"]["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                break;
            }
            after = r["marketplaceApps"]["pageInfo"]["endCursor"].as_str().map(str::to_string);
        }
        assert_eq!(seen, ["Slack Notifier", "Analytics Pro", "Backup Vault", "Notification Hub"], "[{backend:?}]");
        let r = app.gql(None, q, json!({ "after": "bm90IGEgY3Vyc29y" })).await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");

        // Featured apps are the administrators' choice.
        let r = app
            .gql(
                Some(&dev.token),
                "mutation($id: ID!) { setAppFeatured(id: $id, featured: true) { featured } }",
                json!({ "id": ids[2] }),
            )
            .await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
        app.gql_ok(
            Some(&admin.token),
            "mutation($id: ID!) { setAppFeatured(id: $id, featured: true) { featured } }",
            json!({ "id": ids[2] }),
        )
        .await;
        let r = app.gql_ok(None, "{ featuredApps { name } }", json!({})).await;
        assert_eq!(r["featuredApps"], json!([{ "name": "Backup Vault" }]));
        let r = app.gql_ok(None, q, json!({ "f": true })).await;
        assert_eq!(names(&r), ["Backup Vault"]);

        // A key needs `marketplace:read` to browse.
        let (key, _) = app.create_key(&dev.token, &["keys:read"]).await;
        let r = app.gql(Some(&key), q, json!({})).await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
        let (key, _) = app.create_key(&dev.token, &["marketplace:read"]).await;
        let r = app.gql_ok(Some(&key), q, json!({})).await;
        assert_eq!(r["marketplaceApps"]["totalCount"], 4);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_are_one_per_user_and_the_average_stays_exact_under_concurrent_writes() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let (admin, dev) = admin_and_dev(&app).await;
        let (id, _) = create_app(&app, &dev.token, app_input("Rated", "Gets rated", "AUTOMATION")).await;

        // Only ACTIVE apps are reviewed; the developer cannot review their own app.
        let review = "mutation($a: ID!, $r: Int!, $c: String) { submitAppReview(appId: $a, rating: $r, comment: $c) { created review { id rating comment helpfulCount } } }";
        let r = app.gql(Some(&dev.token), review, json!({ "a": id, "r": 5 })).await;
        assert_eq!(code(&r), "CONFLICT", "[{backend:?}] a draft: {r}");
        publish(&app, &dev.token, &admin.token, &id).await;
        let r = app.gql(Some(&dev.token), review, json!({ "a": id, "r": 5 })).await;
        assert_eq!(code(&r), "FORBIDDEN", "[{backend:?}] own app: {r}");

        let mut users = Vec::new();
        for i in 0..8 {
            users.push(app.register(&format!("u{i}@example.com")).await);
        }
        let r = app.gql(Some(&users[0].token), review, json!({ "a": id, "r": 6 })).await;
        assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
        assert_eq!(r["errors"][0]["extensions"]["field"], "rating");

        // Eight users review at once, each twice (the second write updates the first).
        let writes = users.iter().enumerate().flat_map(|(i, u)| {
            let app = &app;
            let id = &id;
            [(u.token.clone(), 1 + (i % 5) as i64), (u.token.clone(), 5 - (i % 5) as i64)]
                .into_iter()
                .map(move |(t, rating)| async move { app.gql(Some(&t), review, json!({ "a": id, "r": rating })).await })
        });
        let results = futures_util::future::join_all(writes).await;
        for r in &results {
            assert!(r.get("errors").is_none(), "[{backend:?}] {r}");
        }
        // Whichever write of each user landed last, the app's count and sum match the reviews.
        let r = app
            .gql_ok(None, "query($id: ID!) { app(id: $id) { rating reviewCount reviews(first: 100) { totalCount edges { node { rating } } } } }", json!({ "id": id }))
            .await;
        let ratings: Vec<i64> = r["app"]["reviews"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["rating"].as_i64().unwrap())
            .collect();
        assert_eq!(ratings.len(), 8, "[{backend:?}] one review per user: {r}");
        assert_eq!(r["app"]["reviewCount"], 8);
        let mean = ratings.iter().sum::<i64>() as f64 / 8.0;
        assert!((r["app"]["rating"].as_f64().unwrap() - mean).abs() < 1e-9, "[{backend:?}] {r} vs {mean}");

        // A second review by the same user is an update, reported as such.
        let r = app.gql_ok(Some(&users[0].token), review, json!({ "a": id, "r": 2, "c": "Meh" })).await;
        assert_eq!(r["submitAppReview"]["created"], false);
        assert_eq!(r["submitAppReview"]["review"]["comment"], "Meh");
        let review_id = r["submitAppReview"]["review"]["id"].as_str().unwrap().to_string();

        // Helpful votes: one per user, never for one's own review; eight at once count seven.
        let vote = "mutation($id: ID!) { markReviewHelpful(id: $id) { helpfulCount } }";
        let r = app.gql(Some(&users[0].token), vote, json!({ "id": review_id })).await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
        let votes = users[1..].iter().flat_map(|u| [u.token.clone(), u.token.clone()]).map(|t| {
            let app = &app;
            let review_id = &review_id;
            async move { app.gql(Some(&t), vote, json!({ "id": review_id })).await }
        });
        for r in futures_util::future::join_all(votes).await {
            assert!(r.get("errors").is_none(), "[{backend:?}] {r}");
        }
        let r = app
            .gql_ok(
                None,
                "query($id: ID!) { app(id: $id) { reviews(first: 100) { edges { node { id helpfulCount } } } } }",
                json!({ "id": id }),
            )
            .await;
        let mine = r["app"]["reviews"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["node"]["id"] == review_id.as_str())
            .unwrap();
        assert_eq!(mine["node"]["helpfulCount"], 7, "[{backend:?}] {r}");

        // Deleting a review takes it out of the average; another user's review is NOT_FOUND to delete.
        let del = "mutation($id: ID!) { deleteAppReview(id: $id) { deletedId } }";
        let r = app.gql(Some(&users[1].token), del, json!({ "id": review_id })).await;
        assert_eq!(code(&r), "NOT_FOUND", "{r}");
        app.gql_ok(Some(&users[0].token), del, json!({ "id": review_id })).await;
        let r = app
            .gql_ok(
                None,
                "query($id: ID!) { app(id: $id) { reviewCount reviews { totalCount } } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(r["app"]["reviewCount"], 7);
        assert_eq!(r["app"]["reviews"]["totalCount"], 7);

        // API keys do not write reviews.
        let (key, _) = app.create_key(&users[2].token, &["marketplace:write"]).await;
        let r = app.gql(Some(&key), review, json!({ "a": id, "r": 4 })).await;
        assert_eq!(code(&r), "FORBIDDEN", "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_routes_of_apps_are_rows_over_the_same_resolvers() {
    for backend in backends() {
        let app = TestApp::new(backend).await;
        let (admin, dev) = admin_and_dev(&app).await;
        let (status, body) = app
            .rest(
                "POST",
                "/apps",
                Some(&dev.token),
                Some(json!({ "name": "Rest App", "description": "Made over REST", "category": "STORAGE",
                    "requested_scopes": ["keys:read"], "redirect_uris": ["https://rest.example.com/cb"] })),
            )
            .await;
        assert_eq!(status, 201, "[{backend:?}] {body}");
        let id = body["data"]["app"]["id"].as_str().unwrap().to_string();
        assert!(body["data"]["client_secret"].as_str().unwrap().starts_with("gko_cs_"), "{body}");
        let (status, body) = app.rest("POST", "/apps", Some(&dev.token), Some(json!({ "name": "" }))).await;
        assert_eq!(status, 422, "{body}");

        let (status, body) =
            app.rest("PUT", &format!("/apps/{id}"), Some(&dev.token), Some(json!({ "version": "2.0.0" }))).await;
        assert_eq!((status, body["data"]["version"].as_str()), (200, Some("2.0.0")), "{body}");
        let (status, body) = app.rest("GET", &format!("/apps/{id}/oauth/config"), Some(&dev.token), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["redirect_uris"], json!(["https://rest.example.com/cb"]), "{body}");

        app.gql_ok(Some(&dev.token), "mutation($id: ID!) { submitApp(id: $id) { status } }", json!({ "id": id })).await;
        let (status, body) = app.rest("GET", "/admin/apps/pending", Some(&dev.token), None).await;
        assert_eq!(status, 403, "{body}");
        let (status, body) = app.rest("GET", "/admin/apps/pending", Some(&admin.token), None).await;
        assert_eq!((status, body["data"][0]["id"].as_str()), (200, Some(id.as_str())), "{body}");
        let (status, body) = app
            .rest(
                "POST",
                &format!("/admin/apps/{id}/reject"),
                Some(&admin.token),
                Some(json!({ "reason": "Needs an icon" })),
            )
            .await;
        assert_eq!((status, body["data"]["status"].as_str()), (200, Some("REJECTED")), "{body}");
        app.gql_ok(Some(&dev.token), "mutation($id: ID!) { submitApp(id: $id) { status } }", json!({ "id": id })).await;
        let (status, _) = app.rest("POST", &format!("/admin/apps/{id}/approve"), Some(&admin.token), None).await;
        assert_eq!(status, 200);
        app.gql_ok(Some(&dev.token), "mutation($id: ID!) { publishApp(id: $id) { status } }", json!({ "id": id }))
            .await;

        let (status, body) = app.rest("GET", "/apps?search=rest&sort=newest", None, None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"][0]["id"], id.as_str(), "{body}");
        let (status, body) = app.rest("GET", &format!("/apps/{id}"), None, None).await;
        assert_eq!((status, body["data"]["status"].as_str()), (200, Some("ACTIVE")), "{body}");

        let user = app.register("user@example.com").await;
        let (status, body) = app
            .rest(
                "POST",
                &format!("/apps/{id}/reviews"),
                Some(&user.token),
                Some(json!({ "rating": 4, "comment": "Good" })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = app.rest("GET", &format!("/apps/{id}/reviews"), None, None).await;
        assert_eq!((status, body["data"][0]["rating"].as_i64()), (200, Some(4)), "{body}");

        let (status, body) =
            app.rest("POST", "/apps/install", Some(&user.token), Some(json!({ "client_id": id, "state": "s" }))).await;
        assert_eq!(status, 201, "[{backend:?}] {body}");
        assert!(body["data"]["redirect_to"].as_str().unwrap().contains("code="), "{body}");
        let install = body["data"]["installation"]["id"].as_str().unwrap().to_string();
        let (status, body) = app.rest("DELETE", &format!("/apps/{install}/uninstall"), Some(&user.token), None).await;
        assert_eq!(status, 204, "{body}");

        let (status, _) =
            app.rest("POST", &format!("/apps/{id}/reviews"), Some(&user.token), Some(json!({ "rating": 9 }))).await;
        assert_eq!(status, 422);
        let (status, body) = app.rest("DELETE", &format!("/apps/{id}"), Some(&dev.token), None).await;
        assert_eq!(status, 409, "an ACTIVE app: {body}");
    }
}
