//! Every GraphQL error leaves with a code, on every transport (HTTP, WebSocket, REST): parse,
//! validation and coercion errors from async-graphql itself become `BAD_USER_INPUT`, and the depth
//! and complexity refusals name their limits (applied by the admission pipeline's `settle`, not a
//! schema extension: any extension sends every field through a slower path). Domain errors become
//! GraphQL errors here, with their code.

use async_graphql::ServerError;

use crate::error::{Code, Error};

#[derive(Clone, Copy)]
pub struct ErrorCodes {
    pub max_depth: usize,
    pub max_complexity: usize,
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

/// The GraphQL error for a domain error: message, `extensions.code`, for bad input the field, for
/// limits `retryAfter` and `window`. Logs internal errors.
pub fn to_graphql(e: &Error) -> async_graphql::Error {
    use async_graphql::ErrorExtensions;
    e.log();
    let code = e.code();
    let field = e.field().map(str::to_string);
    let reason = e.reason();
    let limited = match e {
        Error::Limited { retry_after_secs, window, .. } => Some((*retry_after_secs, window.clone())),
        _ => None,
    };
    async_graphql::Error::new(e.public_message()).extend_with(|_, ext| {
        ext.set("code", code.as_str());
        if let Some(field) = &field {
            ext.set("field", field.as_str());
        }
        if let Some(reason) = reason {
            ext.set("reason", reason);
        }
        if let Some((retry, window)) = &limited {
            ext.set("retryAfter", *retry);
            if let Some(w) = window {
                ext.set("window", w.as_str());
            }
        }
    })
}

/// Every domain error a resolver returns leaves through here, so it keeps its code.
impl From<Error> for async_graphql::Error {
    fn from(e: Error) -> Self {
        to_graphql(&e)
    }
}
