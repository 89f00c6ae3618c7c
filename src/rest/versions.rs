//! REST API versions: the table of versions with their dates, and how a request selects one — the
//! path (`/api/v1`, `/api/v2`) or, on the unversioned `/api/...`, the `X-API-Version` header
//! (`v2`, `2`, or a date such as `2025-11-01`: the newest version released by then). The answer
//! says which version served it (`X-API-Version`); a deprecated version's answers carry
//! `Deprecation` (RFC 9745), `Sunset` (RFC 8594) and a `Link` to the successor.

use axum::http::{HeaderMap, HeaderValue};
use chrono::NaiveDate;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// One row of the version table.
pub struct VersionInfo {
    pub version: Version,
    pub name: &'static str,
    pub released: &'static str,
    /// From this day the version is deprecated.
    pub deprecated: Option<&'static str>,
    /// The announced end of the version. It keeps answering after it; the date is the promise
    /// clients plan against.
    pub sunset: Option<&'static str>,
    pub successor: Option<Version>,
}

/// The versions, oldest first (seed 001 §4).
pub const VERSIONS: &[VersionInfo] = &[
    VersionInfo {
        version: Version::V1,
        name: "v1",
        released: "2024-01-01",
        deprecated: Some("2025-12-01"),
        sunset: Some("2026-12-31"),
        successor: Some(Version::V2),
    },
    VersionInfo {
        version: Version::V2,
        name: "v2",
        released: "2025-11-01",
        deprecated: None,
        sunset: None,
        successor: None,
    },
];

/// The version callers get when they name none on the unversioned `/api/...` path.
pub const DEFAULT: Version = Version::V1;

impl Version {
    pub fn info(self) -> &'static VersionInfo {
        VERSIONS.iter().find(|v| v.version == self).expect("every version is in the table")
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn prefix(self) -> &'static str {
        match self {
            Version::V1 => "/api/v1",
            Version::V2 => "/api/v2",
        }
    }

    /// The version an `X-API-Version` value names, or why it names none.
    pub fn parse(value: &str) -> Result<Version, String> {
        let v = value.trim();
        let named = VERSIONS.iter().find(|i| i.name.eq_ignore_ascii_case(v) || i.name[1..] == *v);
        if let Some(i) = named {
            return Ok(i.version);
        }
        let Ok(date) = NaiveDate::parse_from_str(v, "%Y-%m-%d") else {
            let names: Vec<&str> = VERSIONS.iter().map(|i| i.name).collect();
            return Err(format!("must be a version ({}) or a date (YYYY-MM-DD)", names.join(", ")));
        };
        // The newest version released on or before the date; before the first, the first.
        let chosen = VERSIONS
            .iter()
            .rfind(|i| NaiveDate::parse_from_str(i.released, "%Y-%m-%d").is_ok_and(|r| r <= date))
            .unwrap_or(&VERSIONS[0]);
        Ok(chosen.version)
    }
}

fn http_date(day: &str) -> Option<String> {
    let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().format("%a, %d %b %Y %H:%M:%S GMT").to_string())
}

fn epoch(day: &str) -> Option<i64> {
    Some(NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

/// A version's fixed headers, worked out once: `Deprecation` and `Sunset`.
struct Fixed {
    deprecation: Option<HeaderValue>,
    sunset: Option<HeaderValue>,
}

fn fixed(version: Version) -> &'static Fixed {
    static FIXED: std::sync::LazyLock<Vec<(Version, Fixed)>> = std::sync::LazyLock::new(|| {
        VERSIONS
            .iter()
            .map(|info| {
                let deprecation =
                    info.deprecated.and_then(epoch).and_then(|at| HeaderValue::from_str(&format!("@{at}")).ok());
                let sunset = info.sunset.and_then(http_date).and_then(|d| HeaderValue::from_str(&d).ok());
                (info.version, Fixed { deprecation, sunset })
            })
            .collect()
    });
    &FIXED.iter().find(|(v, _)| *v == version).expect("every version is in the table").1
}

/// `X-API-Version`, and for a deprecated version `Deprecation`, `Sunset` and the successor's
/// `Link` for `path` (the path under the version's prefix, with its query).
pub fn stamp(headers: &mut HeaderMap, version: Version, path: &str) {
    let info = version.info();
    headers.insert("x-api-version", HeaderValue::from_static(info.name));
    let fixed = fixed(version);
    if let Some(v) = &fixed.deprecation {
        headers.insert("deprecation", v.clone());
    }
    if let Some(v) = &fixed.sunset {
        headers.insert("sunset", v.clone());
    }
    if let Some(next) = info.successor
        && let Ok(v) = HeaderValue::from_str(&format!("<{}{path}>; rel=\"successor-version\"", next.prefix()))
    {
        headers.append(axum::http::header::LINK, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `@deprecated` directives of an SDL that name no date (YYYY-MM-DD), each as its line.
    fn undated_deprecations(sdl: &str) -> Vec<String> {
        sdl.lines()
            .filter(|line| line.contains("@deprecated"))
            .filter(|line| {
                !line
                    .as_bytes()
                    .windows(10)
                    .any(|w| std::str::from_utf8(w).is_ok_and(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()))
            })
            .map(|line| line.trim().to_string())
            .collect()
    }

    /// The GraphQL schema is not versioned: it grows by addition, and what it retires is marked
    /// `@deprecated(reason:)` naming the day, as the REST versions do. (v2 changed only the REST
    /// envelope, so no GraphQL field is deprecated by it.)
    #[test]
    fn every_graphql_deprecation_names_its_date() {
        let sample = "type Q {\n  a: Int @deprecated(reason: \"use b (2025-12-01)\")\n  b: Int @deprecated\n  c: Int @deprecated(reason: \"use b\")\n}";
        assert_eq!(
            undated_deprecations(sample),
            vec!["b: Int @deprecated".to_string(), "c: Int @deprecated(reason: \"use b\")".to_string()],
            "the check finds deprecations without a date"
        );
        let undated = undated_deprecations(&crate::graphql::sdl());
        assert!(undated.is_empty(), "deprecations without their date (YYYY-MM-DD): {undated:?}");
    }

    #[test]
    fn a_header_names_a_version_or_a_date() {
        assert_eq!(Version::parse("v2"), Ok(Version::V2));
        assert_eq!(Version::parse("V1"), Ok(Version::V1));
        assert_eq!(Version::parse("2"), Ok(Version::V2));
        assert_eq!(Version::parse("2025-11-01"), Ok(Version::V2));
        assert_eq!(Version::parse("2025-10-31"), Ok(Version::V1));
        assert_eq!(Version::parse("2020-01-01"), Ok(Version::V1), "before the first: the first");
        assert!(Version::parse("v3").is_err());
        assert!(Version::parse("2025-13-01").is_err());
    }

    #[test]
    fn a_deprecated_version_says_so_with_dates_and_its_successor() {
        let mut h = HeaderMap::new();
        stamp(&mut h, Version::V1, "/keys?limit=1");
        assert_eq!(h["x-api-version"], "v1");
        assert_eq!(h["deprecation"], "@1764547200", "2025-12-01T00:00:00Z");
        assert_eq!(h["sunset"], "Thu, 31 Dec 2026 00:00:00 GMT");
        assert_eq!(h["link"], "</api/v2/keys?limit=1>; rel=\"successor-version\"");
        let mut h = HeaderMap::new();
        stamp(&mut h, Version::V2, "/keys");
        assert_eq!(h["x-api-version"], "v2");
        assert!(h.get("deprecation").is_none() && h.get("sunset").is_none() && h.get("link").is_none());
    }
}
