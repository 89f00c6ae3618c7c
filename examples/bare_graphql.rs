//! The benchmark baseline: a bare async-graphql-axum server answering `{ viewer { id } }` with a
//! constant — no authentication, database, limits or middleware. `benches/load.sh` measures Gantry
//! against it in the same run. Usage: `bare_graphql 127.0.0.1:18081`.

use async_graphql::{EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject};
use async_graphql_axum::GraphQL;
use axum::Router;
use axum::routing::post_service;

#[derive(SimpleObject)]
struct Viewer {
    id: ID,
}

struct Query;

#[Object]
impl Query {
    async fn viewer(&self) -> Viewer {
        Viewer { id: ID("key_01jd0000000000000000000000".into()) }
    }
}

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18081".into());
    let schema = Schema::build(Query, EmptyMutation, EmptySubscription).finish();
    let app = Router::new().route("/graphql", post_service(GraphQL::new(schema)));
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
