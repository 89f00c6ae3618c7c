//! camelCase ↔ snake_case for REST bodies. User data (`metadata`, event `data` and `payload`,
//! usage `properties`, webhook `headers`, event type `schema` and `sample`) passes untouched.

use serde_json::{Map, Value};

const OPAQUE: &[&str] = &["metadata", "data", "payload", "properties", "headers", "schema", "sample"];

pub fn to_snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

pub fn to_camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = false;
    for c in s.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn convert(v: Value, f: &dyn Fn(&str) -> String) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let v = if OPAQUE.contains(&k.as_str()) { v } else { convert(v, f) };
                    (f(&k), v)
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(|v| convert(v, f)).collect()),
        other => other,
    }
}

pub fn snake_keys(v: Value) -> Value {
    convert(v, &to_snake)
}

pub fn camel_keys(v: Value) -> Value {
    convert(v, &to_camel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_keys_but_not_user_data() {
        let v = serde_json::json!({ "apiKey": { "lastUsedAt": 1, "metadata": { "customerId": 7 } } });
        assert_eq!(
            snake_keys(v),
            serde_json::json!({ "api_key": { "last_used_at": 1, "metadata": { "customerId": 7 } } })
        );
        assert_eq!(
            camel_keys(serde_json::json!({ "allowed_ips": [], "expires_at": null })),
            serde_json::json!({ "allowedIps": [], "expiresAt": null })
        );
    }
}
