//! Marketplace discovery: ACTIVE apps, searched by the words of their name and description (the
//! same rules on both backends — PostgreSQL full-text search with the `simple` configuration,
//! SQLite FTS5 with the `unicode61` tokenizer: lower-cased words, matched by prefix, every word
//! required), filtered by category, minimum rating, pricing model and featured, and sorted by
//! installs, publication or rating with keyset cursors over `(sort key, id)`.
//!
//! Ratings are compared as exact integers (thousandths of a star from the stored sum and count),
//! never as floating point, so both backends order and filter them identically.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel_async::RunQueryDsl;

use super::model::AppRow;
use super::service::{Category, PricingModel, Status};
use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::pagination::{Page, PageRequest};
use crate::platform::db::schema::apps;
use crate::with_conn;

/// How a marketplace listing is ordered (ties broken by id, newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Most active installations first.
    #[default]
    Popular,
    /// Most recently published first.
    Newest,
    /// Highest average rating first (unrated apps last).
    Rating,
}

impl Sort {
    /// The SQL of the integer sort key, over `apps`.
    fn key_sql(self) -> &'static str {
        match self {
            Sort::Popular => "apps.install_count",
            Sort::Newest => "COALESCE(apps.published_at, 0)",
            Sort::Rating => {
                "(CASE WHEN apps.rating_count = 0 THEN 0 ELSE apps.rating_sum * 1000 / apps.rating_count END)"
            }
        }
    }

    /// The sort key of a row, as [`Sort::key_sql`] computes it.
    fn key_of(self, row: &AppRow) -> i64 {
        match self {
            Sort::Popular => row.install_count,
            Sort::Newest => row.published_at.unwrap_or(0),
            Sort::Rating => {
                if row.rating_count > 0 {
                    row.rating_sum * 1000 / row.rating_count
                } else {
                    0
                }
            }
        }
    }
}

/// What a marketplace listing is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct MarketFilter {
    pub search: Option<String>,
    pub category: Option<Category>,
    /// 0 to 5 stars.
    pub min_rating: Option<f64>,
    pub pricing_model: Option<PricingModel>,
    pub featured: Option<bool>,
}

/// The words of a search, lower-cased: runs of letters and digits, at most 10 of at most 50
/// characters each.
fn search_terms(q: &str) -> Result<Vec<String>> {
    if q.chars().count() > 200 {
        return Err(Error::bad_input("search", "must be at most 200 characters"));
    }
    let terms: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(|t| t.to_lowercase().chars().take(50).collect())
        .take(10)
        .collect();
    Ok(terms)
}

/// The backend's full-text query for the terms: every term, as a prefix.
fn text_query(pg: bool, terms: &[String]) -> String {
    if pg {
        terms.iter().map(|t| format!("{t}:*")).collect::<Vec<_>>().join(" & ")
    } else {
        terms.iter().map(|t| format!("\"{t}\"*")).collect::<Vec<_>>().join(" ")
    }
}

const PG_MATCH: &str = "to_tsvector('simple', apps.name || ' ' || apps.description) @@ to_tsquery('simple', ";
const SQLITE_MATCH: &str = "apps.id IN (SELECT app_id FROM fts_apps WHERE fts_apps MATCH ";

/// The cursor position `(sort key, id)` a marketplace cursor names.
fn parse_position(field: &str, raw: &str) -> Result<(i64, String)> {
    raw.split_once(':')
        .and_then(|(k, id)| Some((k.parse::<i64>().ok()?, id.to_string())))
        .filter(|(_, id)| id.starts_with("app_") && id.len() <= 40)
        .ok_or_else(|| Error::bad_input(field, "not a cursor of this listing"))
}

/// The cursor value of a row in a listing sorted by `sort`.
pub fn position_of(sort: Sort, row: &AppRow) -> String {
    format!("{}:{}", sort.key_of(row), row.id)
}

/// One page of the marketplace: ACTIVE apps matching the filter, ordered by `sort`. Readable
/// anonymously; a credential needs `marketplace:read`.
pub async fn search_apps(
    app: &App,
    principal: Option<&Principal>,
    filter: &MarketFilter,
    sort: Sort,
    page: &PageRequest,
) -> Result<Page<AppRow>> {
    if let Some(p) = principal {
        p.require_scope("marketplace:read")?;
    }
    let terms = filter.search.as_deref().map(search_terms).transpose()?.unwrap_or_default();
    let min_milli = match filter.min_rating {
        Some(r) if (0.0..=5.0).contains(&r) => Some((r * 1000.0).round() as i64),
        Some(_) => return Err(Error::bad_input("minRating", "must be between 0 and 5")),
        None => None,
    };
    let after = page.after.as_deref().map(|c| parse_position("after", c)).transpose()?;
    let before = page.before.as_deref().map(|c| parse_position("before", c)).transpose()?;
    let pg = app.db.is_postgres();
    let query = (!terms.is_empty()).then(|| text_query(pg, &terms));
    let key = sort.key_sql();
    let category = filter.category.map(|c| c.as_str());
    let pricing = filter.pricing_model.map(|p| p.as_str());

    macro_rules! base {
        () => {{
            let mut q = apps::table.filter(apps::status.eq(Status::Active.as_str())).into_boxed();
            if let Some(c) = category {
                q = q.filter(apps::category.eq(c));
            }
            if let Some(p) = pricing {
                q = q.filter(apps::pricing_model.eq(p));
            }
            if let Some(f) = filter.featured {
                q = q.filter(apps::is_featured.eq(f));
            }
            if let Some(m) = min_milli {
                // rating_sum / rating_count >= m / 1000, without division.
                q = q.filter(
                    sql::<Bool>("(apps.rating_count > 0 AND apps.rating_sum * 1000 >= ")
                        .bind::<BigInt, _>(m)
                        .sql(" * apps.rating_count)"),
                );
            }
            if let Some(text) = &query {
                q = q.filter(
                    sql::<Bool>(if pg { PG_MATCH } else { SQLITE_MATCH }).bind::<Text, _>(text.clone()).sql(")"),
                );
            }
            q
        }};
    }
    // `(key, id) < (k, i)` spelled out, as both backends read it.
    macro_rules! beyond {
        ($q:expr, $op:literal, $pos:expr) => {{
            let (k, id) = $pos;
            $q.filter(
                sql::<Bool>(&format!("({key} {} ", $op))
                    .bind::<BigInt, _>(*k)
                    .sql(&format!(" OR ({key} = "))
                    .bind::<BigInt, _>(*k)
                    .sql(&format!(" AND apps.id {} ", $op))
                    .bind::<Text, _>(id.clone())
                    .sql("))"),
            )
        }};
    }
    let (rows, total) = with_conn!(app.db, c => {
        let total: i64 = base!().count().get_result(c).await?;
        let mut q = base!().select(AppRow::as_select()).limit(page.limit + 1);
        if let Some(pos) = &after {
            q = beyond!(q, "<", pos);
        }
        if let Some(pos) = &before {
            q = beyond!(q, ">", pos);
        }
        q = if page.from_end {
            q.order((sql::<BigInt>(key).asc(), apps::id.asc()))
        } else {
            q.order((sql::<BigInt>(key).desc(), apps::id.desc()))
        };
        let rows: Vec<AppRow> = q.load(c).await?;
        (rows, total)
    });
    Ok(Page::from_rows(rows, page, total))
}

/// Featured ACTIVE apps, most installed first (at most 50).
pub async fn featured_apps(app: &App, principal: Option<&Principal>) -> Result<Vec<AppRow>> {
    if let Some(p) = principal {
        p.require_scope("marketplace:read")?;
    }
    Ok(with_conn!(app.db, c => {
        apps::table
            .filter(apps::status.eq(Status::Active.as_str()))
            .filter(apps::is_featured.eq(true))
            .order((apps::install_count.desc(), apps::id.desc()))
            .limit(50)
            .select(AppRow::as_select())
            .load(c).await?
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_are_lower_cased_runs_of_letters_and_digits() {
        assert_eq!(search_terms("Slack, e-mail & CI/CD 2").unwrap(), ["slack", "e", "mail", "ci", "cd", "2"]);
        assert!(search_terms("  ").unwrap().is_empty());
        assert_eq!(text_query(true, &["sla".into(), "ci".into()]), "sla:* & ci:*");
        assert_eq!(text_query(false, &["sla".into(), "ci".into()]), "\"sla\"* \"ci\"*");
    }

    #[test]
    fn cursor_positions_round_trip_and_refuse_anything_else() {
        assert_eq!(parse_position("after", "42:app_01abc").unwrap(), (42, "app_01abc".to_string()));
        assert!(parse_position("after", "x:app_01").is_err());
        assert!(parse_position("after", "1:key_01").is_err());
        assert!(parse_position("after", "app_01").is_err());
    }
}
