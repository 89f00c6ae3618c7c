//! Diesel rows for marketplace apps, their OAuth client settings and secrets, and reviews.

use diesel::prelude::*;

use crate::platform::db::schema::{app_clients, app_review_votes, app_reviews, app_secrets, apps};
use crate::platform::ids::{AppId, OrgId, ReviewId, UserId};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = apps)]
pub struct AppRow {
    pub id: AppId,
    pub org_id: OrgId,
    pub name: String,
    pub slug: String,
    pub description: String,
    pub long_description: String,
    pub category: String,
    pub icon_url: Option<String>,
    pub version: String,
    pub pricing_model: String,
    pub price_amount: Option<i64>,
    pub price_currency: String,
    pub features: String,
    pub scopes: String,
    pub docs_url: Option<String>,
    pub support_url: Option<String>,
    pub status: String,
    pub review_reason: Option<String>,
    pub reviewed_by: Option<UserId>,
    pub reviewed_at: Option<i64>,
    pub submitted_at: Option<i64>,
    pub published_at: Option<i64>,
    pub deprecated_at: Option<i64>,
    pub is_featured: bool,
    pub install_count: i64,
    pub rating_count: i64,
    pub rating_sum: i64,
    pub created_by: Option<UserId>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl AppRow {
    pub fn feature_list(&self) -> Vec<String> {
        serde_json::from_str(&self.features).unwrap_or_default()
    }

    pub fn scope_list(&self) -> Vec<String> {
        serde_json::from_str(&self.scopes).unwrap_or_default()
    }

    /// The average rating, or `None` before the first review.
    pub fn rating(&self) -> Option<f64> {
        (self.rating_count > 0).then(|| self.rating_sum as f64 / self.rating_count as f64)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = app_clients, primary_key(app_id))]
pub struct ClientRow {
    pub app_id: AppId,
    pub client_type: String,
    pub redirect_uris: String,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    pub rate_limit: Option<String>,
    pub updated_at: i64,
}

impl ClientRow {
    pub fn redirect_uri_list(&self) -> Vec<String> {
        serde_json::from_str(&self.redirect_uris).unwrap_or_default()
    }

    pub fn is_public(&self) -> bool {
        self.client_type == "public"
    }

    /// The app's own rate limits, if it has them.
    pub fn rate_override(&self) -> Option<crate::limits::policy::Override> {
        self.rate_limit
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .filter(|o: &crate::limits::policy::Override| !o.is_empty())
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = app_secrets)]
pub struct ClientSecretRow {
    pub secret_hash: String,
    pub app_id: AppId,
    pub last_four: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = app_reviews)]
pub struct ReviewRow {
    pub id: ReviewId,
    pub app_id: AppId,
    pub user_id: UserId,
    pub rating: i64,
    pub comment: Option<String>,
    pub helpful_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = app_review_votes)]
pub struct VoteRow {
    pub review_id: ReviewId,
    pub user_id: UserId,
    pub created_at: i64,
}
