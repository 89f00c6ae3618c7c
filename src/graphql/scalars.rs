//! The `DateTime` scalar: RFC 3339, UTC, millisecond precision. Stored as epoch milliseconds.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

use crate::platform::clock::{parse_rfc3339, rfc3339};

/// An instant in UTC, as an RFC 3339 string such as `2026-11-25T09:34:10.123Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime(pub i64);

/// An RFC 3339 timestamp (UTC, millisecond precision), for example `2026-11-25T09:34:10.123Z`.
#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => parse_rfc3339(s)
                .map(DateTime)
                .ok_or_else(|| InputValueError::custom(format!("`{s}` is not an RFC 3339 timestamp"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(rfc3339(self.0))
    }
}

impl From<i64> for DateTime {
    fn from(ms: i64) -> Self {
        DateTime(ms)
    }
}
