//! Event-type filters — exact names, `category.*` or `*` — shared by webhook endpoints, the
//! `events` list and the `events` subscription.

use crate::error::Error;

/// Whether an event type matches a filter entry: an exact name, `category.*`, or `*`.
pub fn type_matches(filter: &str, event_type: &str) -> bool {
    filter == "*"
        || filter == event_type
        || filter
            .strip_suffix(".*")
            .is_some_and(|cat| event_type.strip_prefix(cat).is_some_and(|rest| rest.starts_with('.')))
}

/// The most entries an event-type filter may have (endpoint filters, `events`, the subscription).
pub const MAX_FILTERS: usize = 50;

/// Checks a filter list: at most [`MAX_FILTERS`] entries, each well-formed.
pub fn check_filters(field: &str, filters: &[String]) -> Result<(), Error> {
    if filters.len() > MAX_FILTERS {
        return Err(Error::bad_input(field, format!("give at most {MAX_FILTERS} event types (`*` for all)")));
    }
    filters.iter().try_for_each(|f| check_filter(field, f))
}

/// Checks one filter entry (`field` names the argument in the error).
pub fn check_filter(field: &str, f: &str) -> Result<(), Error> {
    let body = f.strip_suffix(".*").unwrap_or(f);
    let ok = f == "*"
        || (!body.is_empty()
            && body.len() <= 100
            && body.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            && !body.starts_with('.')
            && !body.ends_with('.'));
    if ok { Ok(()) } else { Err(Error::bad_input(field, format!("`{f}` is not an event type, `category.*` or `*`"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_exact_category_and_all() {
        assert!(type_matches("*", "key.created"));
        assert!(type_matches("key.created", "key.created"));
        assert!(type_matches("key.*", "key.created"));
        assert!(!type_matches("key.*", "keys.created"));
        assert!(!type_matches("key.created", "key.revoked"));
        assert!(check_filter("types", "webhook.delivery.*").is_ok());
        assert!(check_filter("types", "bad type").is_err());
        assert!(check_filter("types", ".*").is_err());
    }
}
