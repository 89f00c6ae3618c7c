//! Relay connections built from service pages: `edges { cursor node }`, `pageInfo` and
//! `totalCount`, with `first`/`last` limited to 1–100.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{OutputType, SimpleObject};

use crate::pagination::{Page, encode_cursor};

/// Fields every connection carries beside its edges.
#[derive(SimpleObject)]
pub struct ConnectionFields {
    /// How many items match the filters, over all pages.
    pub total_count: i64,
}

pub type Conn<T> = Connection<String, T, ConnectionFields>;

/// Turns a page of rows into a connection, mapping each row to its GraphQL node.
pub fn connection<R, T: OutputType>(page: Page<R>, id: impl Fn(&R) -> String, node: impl Fn(R) -> T) -> Conn<T> {
    let mut conn = Connection::with_additional_fields(
        page.has_previous,
        page.has_next,
        ConnectionFields { total_count: page.total_count },
    );
    conn.edges.extend(page.items.into_iter().map(|r| Edge::new(encode_cursor(&id(&r)), node(r))));
    conn
}
