//! The one domain error type. Every failure a client can see maps to a stable code from a closed
//! list; GraphQL puts it in `extensions.code`, REST maps it to an HTTP status and `error.type`.
//! Internal errors are logged with their cause and shown to clients only as `INTERNAL`.

use std::panic::Location;

/// Stable, client-visible error codes (the closed list in CONVENTIONS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadUserInput,
    Conflict,
    RateLimited,
    QuotaExceeded,
    PayloadTooLarge,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::NotFound => "NOT_FOUND",
            Code::BadUserInput => "BAD_USER_INPUT",
            Code::Conflict => "CONFLICT",
            Code::RateLimited => "RATE_LIMITED",
            Code::QuotaExceeded => "QUOTA_EXCEEDED",
            Code::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Code::Internal => "INTERNAL",
        }
    }

    pub fn parse(s: &str) -> Option<Code> {
        Some(match s {
            "UNAUTHENTICATED" => Code::Unauthenticated,
            "FORBIDDEN" => Code::Forbidden,
            "NOT_FOUND" => Code::NotFound,
            "BAD_USER_INPUT" => Code::BadUserInput,
            "CONFLICT" => Code::Conflict,
            "RATE_LIMITED" => Code::RateLimited,
            "QUOTA_EXCEEDED" => Code::QuotaExceeded,
            "PAYLOAD_TOO_LARGE" => Code::PayloadTooLarge,
            "INTERNAL" => Code::Internal,
            _ => return None,
        })
    }

    /// The HTTP status a REST caller (or a failed HTTP pipeline step) gets for this code.
    pub fn http_status(self) -> u16 {
        match self {
            Code::Unauthenticated => 401,
            Code::Forbidden => 403,
            Code::NotFound => 404,
            Code::BadUserInput => 422,
            Code::Conflict => 409,
            Code::RateLimited | Code::QuotaExceeded => 429,
            Code::PayloadTooLarge => 413,
            Code::Internal => 500,
        }
    }

    /// The REST envelope's `error.type` (snake_case, seed 001 §2.3).
    pub fn rest_type(self) -> &'static str {
        match self {
            Code::Unauthenticated => "authentication_error",
            Code::Forbidden => "permission_error",
            Code::NotFound => "not_found",
            Code::BadUserInput => "validation_error",
            Code::Conflict => "conflict",
            Code::RateLimited => "rate_limit_exceeded",
            Code::QuotaExceeded => "quota_exceeded",
            Code::PayloadTooLarge => "payload_too_large",
            Code::Internal => "internal_error",
        }
    }
}

/// A domain error. It deliberately does not implement `Display`: async-graphql converts any
/// `Display` type into an error without a code, and every error here must carry its code, so the
/// conversion below is the only way out.
#[derive(Debug)]
pub enum Error {
    Unauthenticated(String),
    Forbidden(String),
    NotFound(&'static str),
    BadInput {
        field: String,
        message: String,
    },
    Conflict(String),
    PayloadTooLarge(String),
    /// `FORBIDDEN` for a standing reason a client can act on, named in `extensions.reason`
    /// (`USER_SUSPENDED`, `ORGANIZATION_SUSPENDED`, `ORGANIZATION_DELETED`).
    Denied {
        reason: &'static str,
        message: String,
    },
    /// A rate limit, quota or concurrency refusal (`RATE_LIMITED` or `QUOTA_EXCEEDED`).
    Limited {
        code: Code,
        message: String,
        retry_after_secs: i64,
        window: Option<String>,
    },
    Internal {
        source: anyhow::Error,
        location: &'static Location<'static>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn code(&self) -> Code {
        match self {
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::Forbidden(_) | Error::Denied { .. } => Code::Forbidden,
            Error::NotFound(_) => Code::NotFound,
            Error::BadInput { .. } => Code::BadUserInput,
            Error::Conflict(_) => Code::Conflict,
            Error::PayloadTooLarge(_) => Code::PayloadTooLarge,
            Error::Limited { code, .. } => *code,
            Error::Internal { .. } => Code::Internal,
        }
    }

    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::BadInput { field: field.into(), message: message.into() }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::Forbidden(message.into())
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Error::Unauthenticated(message.into())
    }

    #[track_caller]
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        Error::Internal { source: source.into(), location: Location::caller() }
    }

    /// Extensions beyond `code` and `field`: `retryAfter` (seconds) and `window` for limits.
    pub fn extra_extensions(&self) -> serde_json::Value {
        match self {
            Error::Limited { retry_after_secs, window, .. } => {
                serde_json::json!({ "retryAfter": retry_after_secs, "window": window })
            }
            Error::Denied { reason, .. } => serde_json::json!({ "reason": reason }),
            _ => serde_json::json!({}),
        }
    }

    /// The standing reason of a `FORBIDDEN` ([`Error::Denied`]).
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Error::Denied { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The field a `BAD_USER_INPUT` error is about.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::BadInput { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The message safe to show a client: never the cause of an internal error.
    pub fn public_message(&self) -> String {
        match self {
            Error::Unauthenticated(m)
            | Error::Forbidden(m)
            | Error::Conflict(m)
            | Error::PayloadTooLarge(m)
            | Error::Denied { message: m, .. } => m.clone(),
            Error::NotFound(what) => format!("{what} not found"),
            Error::Limited { message, .. } => message.clone(),
            Error::BadInput { field, message } => format!("{field}: {message}"),
            Error::Internal { .. } => "internal error".to_string(),
        }
    }

    /// Logs an internal error with its cause and location; other errors are the client's.
    pub fn log(&self) {
        if let Error::Internal { source, location } = self {
            tracing::error!(error = %format!("{source:#}"), at = %location, "internal error");
        }
    }
}

impl From<diesel::result::Error> for Error {
    #[track_caller]
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error as D};
        match e {
            D::NotFound => Error::NotFound("record"),
            D::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                // The constraint name is schema detail: logged, not shown.
                tracing::debug!(constraint = ?info.constraint_name(), "unique violation");
                Error::Conflict("a record with these values already exists".into())
            }
            // PostgreSQL text cannot hold NUL (SQLSTATE 22021); SQLite can. Whichever input carried
            // it, the statement failed and its transaction rolls back: the client's mistake.
            D::DatabaseError(_, info)
                if info.message().contains("invalid byte sequence") && info.message().contains("0x00") =>
            {
                Error::bad_input("input", "text may not contain the NUL character (\\u0000)")
            }
            other => Error::internal(other),
        }
    }
}

impl From<crate::platform::db::PoolError> for Error {
    #[track_caller]
    fn from(e: crate::platform::db::PoolError) -> Self {
        Error::internal(anyhow::Error::new(e).context("database pool"))
    }
}

impl Error {
    /// Whether trying the same write again may succeed: the database could not be reached or
    /// refused for a reason of its own (a lost connection, a serialization failure, an error it
    /// raised itself) — not a constraint the data breaks (a foreign key, a check, a NOT NULL).
    pub fn is_transient(&self) -> bool {
        use diesel::result::{DatabaseErrorKind as K, Error as D};
        let Error::Internal { source, .. } = self else { return false };
        if source.downcast_ref::<crate::platform::db::PoolError>().is_some() {
            return true;
        }
        match source.downcast_ref::<D>() {
            Some(D::DatabaseError(kind, _)) => {
                !matches!(kind, K::ForeignKeyViolation | K::CheckViolation | K::NotNullViolation | K::UniqueViolation)
            }
            Some(D::BrokenTransactionManager | D::AlreadyInTransaction | D::NotInTransaction) => true,
            Some(_) => false,
            None => true,
        }
    }
}
