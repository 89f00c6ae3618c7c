//! camelCase ↔ snake_case names. Which keys of a body or an answer are converted is decided by
//! their types ([`super::typed`]): values of `JSON` fields are user data and pass untouched.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(to_snake("allowedIps"), "allowed_ips");
        assert_eq!(to_camel("allowed_ips"), "allowedIps");
        assert_eq!(to_camel(&to_snake("p99LatencyMs")), "p99LatencyMs");
    }
}
