//! Prefixed, time-ordered identifiers (`usr_01jd…`), like Stripe's. The body is a lowercase ULID,
//! so string order is creation order and keyset pagination can order by id. They double as Relay
//! global IDs: the prefix names the type.

use std::fmt;
use std::str::FromStr;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;

/// The last id body made by this process, as (milliseconds, random part). Ids made in the same
/// millisecond (or while the clock stands still or steps back) increment the random part, so
/// "newest first" is exact within a process.
static LAST: std::sync::Mutex<(u64, u128)> = std::sync::Mutex::new((0, 0));

/// Makes a fresh id body: a lowercase ULID from the given time in milliseconds.
pub fn new_body(now_ms: i64) -> String {
    let now = now_ms.max(0) as u64;
    let mut last = LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let random_mask = (1u128 << 80) - 1;
    let (ms, random) = if now <= last.0 && last.1 < random_mask {
        (last.0, last.1 + 1)
    } else {
        // 80 random bits with the top one clear, so increments have room.
        let fresh = u128::from_be_bytes(crate::platform::crypto::random_bytes::<16>()) & (random_mask >> 1);
        (now.max(last.0), fresh)
    };
    *last = (ms, random);
    ulid::Ulid::from_parts(ms, random).to_string().to_ascii_lowercase()
}

/// The prefix of a global id (`key` for `key_01…`), if it has one.
pub fn prefix_of(id: &str) -> Option<&str> {
    id.split_once('_').map(|(p, _)| p)
}

fn is_valid_body(body: &str) -> bool {
    body.len() == 26 && body.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
                 serde::Serialize, serde::Deserialize)]
        #[diesel(sql_type = Text)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new id, time-ordered by `now_ms`.
            pub fn generate(now_ms: i64) -> Self {
                Self(format!("{}_{}", $prefix, new_body(now_ms)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = ();
            /// Accepts only well-formed ids of this type (prefix and 26-character body).
            fn from_str(s: &str) -> Result<Self, ()> {
                match s.split_once('_') {
                    Some((p, body)) if p == $prefix && is_valid_body(body) => Ok(Self(s.to_string())),
                    _ => Err(()),
                }
            }
        }

        impl<DB: Backend> ToSql<Text, DB> for $name
        where
            str: ToSql<Text, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.0.as_str().to_sql(out)
            }
        }

        impl<DB: Backend> FromSql<Text, DB> for $name
        where
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                String::from_sql(bytes).map(Self)
            }
        }
    };
}

id_type!(/// A user account.
    UserId, "usr");
id_type!(/// An organization (tenant).
    OrgId, "org");
id_type!(/// An API key.
    KeyId, "key");
id_type!(/// A login session.
    SessionId, "ses");
id_type!(/// An event (outbox row).
    EventId, "evt");
id_type!(/// An audit log entry.
    AuditId, "aud");
id_type!(/// A raw usage record (one API call).
    UsageId, "use");
id_type!(/// A metered event reported with `recordUsage`.
    MeterEventId, "mev");
id_type!(/// A usage alert.
    AlertId, "alr");
id_type!(/// A plan (the built-in ones have readable bodies: `pln_0000000000000000000starter`).
    PlanId, "pln");
id_type!(/// A webhook endpoint.
    WebhookId, "whk");
id_type!(/// A webhook signing secret (never exposed; the secret is derived from it).
    WebhookSecretId, "whs");
id_type!(/// A webhook delivery: one event to one endpoint, over all its attempts.
    DeliveryId, "msg");
id_type!(/// One HTTP attempt of a delivery.
    AttemptId, "att");
id_type!(/// A marketplace app (also its OAuth `client_id`).
    AppId, "app");
id_type!(/// A review of an app.
    ReviewId, "rev");
id_type!(/// An app installed in an organization: the organization's OAuth grant to the app.
    InstallationId, "ins");
id_type!(/// A family of OAuth tokens issued from one authorization code or client-credentials request.
    GrantId, "grt");
id_type!(/// An organization's subscription to a plan.
    SubscriptionId, "sub");
id_type!(/// An invoice.
    InvoiceId, "inv");
id_type!(/// A payment method (a card, shown by brand, last four digits and expiry).
    PaymentMethodId, "pm");
id_type!(/// One charge attempt of an invoice.
    PaymentId, "pay");
id_type!(/// A billable metric over the usage reported with `recordUsage`.
    MetricId, "bm");
id_type!(/// An invitation to join an organization.
    InvitationId, "ivt");
id_type!(/// A feature flag.
    FlagId, "ff");
id_type!(/// An export of an organization's data.
    ExportId, "exp");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_time_ordered() {
        let a = KeyId::generate(1_700_000_000_000);
        let b = KeyId::generate(1_700_000_000_001);
        assert!(a.as_str().starts_with("key_"));
        assert!(a < b, "{a} should sort before {b}");
        assert_eq!(a.as_str().parse::<KeyId>().unwrap(), a);
    }

    #[test]
    fn ids_made_in_the_same_millisecond_keep_their_order() {
        let ids: Vec<KeyId> = (0..100).map(|_| KeyId::generate(1_700_000_000_000)).collect();
        for w in ids.windows(2) {
            assert!(w[0] < w[1], "{} !< {}", w[0], w[1]);
        }
    }

    #[test]
    fn parsing_rejects_other_prefixes_and_garbage() {
        let u = UserId::generate(1);
        assert!(u.as_str().parse::<KeyId>().is_err());
        assert!("key_short".parse::<KeyId>().is_err());
        assert!("key_01JD0000000000000000000000".parse::<KeyId>().is_err(), "uppercase body refused");
        assert!("".parse::<KeyId>().is_err());
    }
}
