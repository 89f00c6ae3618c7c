//! Every GraphQL error leaves with a code, on every transport (HTTP, WebSocket, REST): parse,
//! validation and coercion errors from async-graphql itself become `BAD_USER_INPUT`, and the depth
//! and complexity refusals name their limits. A schema extension, so no transport can forget it.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest, NextSubscribe};
use async_graphql::{Response, ServerError};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::error::Code;

#[derive(Clone, Copy)]
pub struct ErrorCodes {
    pub max_depth: usize,
    pub max_complexity: usize,
}

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

impl ErrorCodes {
    /// Gives every error without a code `BAD_USER_INPUT`, naming the limit in depth/complexity errors.
    pub fn fix(&self, errors: &mut [ServerError]) {
        for err in errors {
            let ext = err.extensions.get_or_insert_with(Default::default);
            if ext.get("code").is_some() {
                continue;
            }
            if err.message == "Query is nested too deep." {
                err.message = format!("Query is nested too deep: the maximum depth is {}.", self.max_depth);
            } else if err.message == "Query is too complex." {
                err.message = format!("Query is too complex: the maximum complexity is {}.", self.max_complexity);
            }
            ext.set("code", Code::BadUserInput.as_str());
        }
    }
}

#[async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        self.fix(&mut response.errors);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let this = *self;
        next.run(ctx, stream)
            .map(move |mut r| {
                this.fix(&mut r.errors);
                r
            })
            .boxed()
    }
}
