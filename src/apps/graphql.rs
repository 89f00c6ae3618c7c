//! GraphQL types and resolvers for marketplace apps and their reviews.

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};

use super::marketplace::{self, MarketFilter, Sort};
use super::model::{AppRow, ClientRow, ReviewRow};
use super::reviews;
use super::service::{self, Category, ClientType, CreateApp, OwnFilter, Pricing, PricingModel, Status, UpdateApp};
use crate::accounts::graphql::User;
use crate::graphql::connection::{Conn, connection};
use crate::graphql::context::{ContextExt, Scope};
use crate::graphql::loaders::{Loaders, loader_error};
use crate::graphql::page_complexity;
use crate::graphql::patch;
use crate::graphql::scalars::DateTime;
use crate::limits::graphql::RateLimitOverride;
use crate::pagination::PageRequest;

/// Where an app is in its lifecycle: DRAFT → PENDING (submitted) → APPROVED or REJECTED (by a
/// platform administrator) → ACTIVE (published) → DEPRECATED.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum AppStatus {
    /// Being written by its owner; only the owner sees it.
    Draft,
    /// Submitted, waiting for a platform administrator's review.
    Pending,
    /// Approved; its owner may publish it.
    Approved,
    /// Rejected, with a reason (`reviewReason`); its owner may change it and submit again.
    Rejected,
    /// In the marketplace: listed and installable.
    Active,
    /// Taken off the marketplace for good.
    Deprecated,
}

impl From<Status> for AppStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Draft => AppStatus::Draft,
            Status::Pending => AppStatus::Pending,
            Status::Approved => AppStatus::Approved,
            Status::Rejected => AppStatus::Rejected,
            Status::Active => AppStatus::Active,
            Status::Deprecated => AppStatus::Deprecated,
        }
    }
}

impl From<AppStatus> for Status {
    fn from(s: AppStatus) -> Self {
        match s {
            AppStatus::Draft => Status::Draft,
            AppStatus::Pending => Status::Pending,
            AppStatus::Approved => Status::Approved,
            AppStatus::Rejected => Status::Rejected,
            AppStatus::Active => Status::Active,
            AppStatus::Deprecated => Status::Deprecated,
        }
    }
}

/// Marketplace categories.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum AppCategory {
    /// Connects the platform to other products.
    Integrations,
    /// Dashboards and reports.
    Analytics,
    /// Does work on a trigger or a schedule.
    Automation,
    /// Chat, mail and notifications.
    Communication,
    /// Files, backups and exports.
    Storage,
    /// Secrets, access and compliance.
    Security,
    /// SDKs, testing and debugging.
    DeveloperTools,
    /// Multi-step processes across tools.
    WorkflowAutomation,
}

impl From<AppCategory> for Category {
    fn from(c: AppCategory) -> Self {
        match c {
            AppCategory::Integrations => Category::Integrations,
            AppCategory::Analytics => Category::Analytics,
            AppCategory::Automation => Category::Automation,
            AppCategory::Communication => Category::Communication,
            AppCategory::Storage => Category::Storage,
            AppCategory::Security => Category::Security,
            AppCategory::DeveloperTools => Category::DeveloperTools,
            AppCategory::WorkflowAutomation => Category::WorkflowAutomation,
        }
    }
}

impl From<Category> for AppCategory {
    fn from(c: Category) -> Self {
        match c {
            Category::Integrations => AppCategory::Integrations,
            Category::Analytics => AppCategory::Analytics,
            Category::Automation => AppCategory::Automation,
            Category::Communication => AppCategory::Communication,
            Category::Storage => AppCategory::Storage,
            Category::Security => AppCategory::Security,
            Category::DeveloperTools => AppCategory::DeveloperTools,
            Category::WorkflowAutomation => AppCategory::WorkflowAutomation,
        }
    }
}

/// How an app is priced.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum AppPricingModel {
    /// No charge.
    Free,
    /// A fixed price per month.
    Fixed,
    /// A price per 1,000 API calls.
    UsageBased,
    /// Free to start, with a paid tier at `amount` per month.
    Freemium,
}

impl From<AppPricingModel> for PricingModel {
    fn from(p: AppPricingModel) -> Self {
        match p {
            AppPricingModel::Free => PricingModel::Free,
            AppPricingModel::Fixed => PricingModel::Fixed,
            AppPricingModel::UsageBased => PricingModel::UsageBased,
            AppPricingModel::Freemium => PricingModel::Freemium,
        }
    }
}

impl From<PricingModel> for AppPricingModel {
    fn from(p: PricingModel) -> Self {
        match p {
            PricingModel::Free => AppPricingModel::Free,
            PricingModel::Fixed => AppPricingModel::Fixed,
            PricingModel::UsageBased => AppPricingModel::UsageBased,
            PricingModel::Freemium => AppPricingModel::Freemium,
        }
    }
}

/// Whether an app's OAuth client can keep a secret.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum OAuthClientType {
    /// A server that keeps a client secret (`client_secret_basic` or `client_secret_post`).
    Confidential,
    /// A browser or mobile app without a secret; it must use PKCE (S256).
    Public,
}

impl From<OAuthClientType> for ClientType {
    fn from(t: OAuthClientType) -> Self {
        match t {
            OAuthClientType::Confidential => ClientType::Confidential,
            OAuthClientType::Public => ClientType::Public,
        }
    }
}

/// How the marketplace is ordered.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum MarketplaceSort {
    /// Most active installations first.
    #[default]
    Popular,
    /// Most recently published first.
    Newest,
    /// Highest average rating first; unrated apps last.
    Rating,
}

impl From<MarketplaceSort> for Sort {
    fn from(s: MarketplaceSort) -> Self {
        match s {
            MarketplaceSort::Popular => Sort::Popular,
            MarketplaceSort::Newest => Sort::Newest,
            MarketplaceSort::Rating => Sort::Rating,
        }
    }
}

/// An app's price.
#[derive(SimpleObject)]
pub struct AppPricing {
    /// The pricing model.
    pub model: AppPricingModel,
    /// Minor units of `currency` (per month, or per 1,000 calls for USAGE_BASED); null when free.
    pub amount: Option<i64>,
    /// ISO 4217 currency code.
    pub currency: String,
}

/// An app's price, as set by its owner.
#[derive(InputObject, Clone)]
pub struct AppPricingInput {
    /// The pricing model.
    pub model: AppPricingModel,
    /// Minor units of `currency`; required unless FREE.
    pub amount: Option<i64>,
    /// ISO 4217 code (default USD).
    pub currency: Option<String>,
}

impl From<AppPricingInput> for Pricing {
    fn from(p: AppPricingInput) -> Self {
        Pricing { model: p.model.into(), amount: p.amount, currency: p.currency }
    }
}

/// The organization that publishes an app.
#[derive(SimpleObject)]
pub struct AppDeveloper {
    /// Organization id (`org_…`).
    pub id: ID,
    /// Organization name.
    pub name: String,
}

/// A client secret that works now, identified by its last four characters.
#[derive(SimpleObject)]
pub struct ClientSecretHint {
    /// The secret's last four characters.
    pub last_four: String,
    /// When it was issued.
    pub created_at: DateTime,
    /// When it stops working (null = until rotated out).
    pub expires_at: Option<DateTime>,
}

/// An app as an OAuth 2.0 client. Only its owner organization sees it.
pub struct OAuthClientConfig {
    row: ClientRow,
}

/// An app as an OAuth 2.0 client. Only its owner organization sees it.
#[Object]
impl OAuthClientConfig {
    /// The `client_id` (the app's id).
    async fn client_id(&self) -> ID {
        self.row.app_id.clone().into()
    }
    /// Confidential (with a secret) or public (PKCE only).
    async fn client_type(&self) -> OAuthClientType {
        if self.row.is_public() { OAuthClientType::Public } else { OAuthClientType::Confidential }
    }
    /// The exact redirect URIs an authorization request may name.
    async fn redirect_uris(&self) -> Vec<String> {
        self.row.redirect_uri_list()
    }
    /// Lifetime of an access token, in seconds.
    async fn access_token_lifetime(&self) -> i64 {
        self.row.access_token_ttl_secs
    }
    /// Lifetime of a refresh token, in seconds.
    async fn refresh_token_lifetime(&self) -> i64 {
        self.row.refresh_token_ttl_secs
    }
    /// The app's own rate limits, within each installing organization's plan (null = the plan's).
    async fn rate_limit(&self) -> Option<RateLimitOverride> {
        self.row.rate_override().map(Into::into)
    }
    /// Client secrets that work now, newest first (a rotation keeps the previous one until its expiry).
    async fn secrets(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ClientSecretHint>> {
        let hints = service::client_secret_hints(ctx.app(), &self.row.app_id).await?;
        Ok(hints
            .into_iter()
            .map(|(last_four, created, expires)| ClientSecretHint {
                last_four,
                created_at: created.into(),
                expires_at: expires.map(DateTime),
            })
            .collect())
    }
}

/// A marketplace app: what it does, who publishes it, what it asks for, how it is rated.
pub struct MarketplaceApp(pub AppRow);

/// A marketplace app: what it does, who publishes it, what it asks for, how it is rated.
#[Object(name = "App")]
impl MarketplaceApp {
    /// Global id (`app_…`); also the app's OAuth `client_id`.
    pub async fn id(&self) -> ID {
        self.0.id.clone().into()
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Unique, URL-safe name (`slack-integration`).
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    /// One or two sentences.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// The full description (Markdown).
    async fn long_description(&self) -> &str {
        &self.0.long_description
    }
    /// Marketplace category.
    async fn category(&self) -> AppCategory {
        Category::parse(&self.0.category).unwrap_or(Category::Integrations).into()
    }
    /// Icon image URL.
    async fn icon_url(&self) -> Option<&str> {
        self.0.icon_url.as_deref()
    }
    /// The app's version (`2.1.0`).
    async fn version(&self) -> &str {
        &self.0.version
    }
    /// Where the app is in its lifecycle.
    async fn status(&self) -> AppStatus {
        self.0.status().into()
    }
    /// Why a platform administrator rejected the app (its owner sees it; null otherwise).
    async fn review_reason(&self, ctx: &Context<'_>) -> Option<&str> {
        self.owned(ctx).then_some(self.0.review_reason.as_deref()).flatten()
    }
    /// When the app was last submitted for review.
    async fn submitted_at(&self) -> Option<DateTime> {
        self.0.submitted_at.map(DateTime)
    }
    /// When a platform administrator last approved or rejected it.
    async fn reviewed_at(&self) -> Option<DateTime> {
        self.0.reviewed_at.map(DateTime)
    }
    /// When it was first published to the marketplace.
    async fn published_at(&self) -> Option<DateTime> {
        self.0.published_at.map(DateTime)
    }
    /// When it was deprecated.
    async fn deprecated_at(&self) -> Option<DateTime> {
        self.0.deprecated_at.map(DateTime)
    }
    /// Highlighted in the marketplace by the platform administrators.
    async fn featured(&self) -> bool {
        self.0.is_featured
    }
    /// Its price.
    async fn pricing(&self) -> AppPricing {
        AppPricing {
            model: PricingModel::parse(&self.0.pricing_model).unwrap_or(PricingModel::Free).into(),
            amount: self.0.price_amount,
            currency: self.0.price_currency.clone(),
        }
    }
    /// What it does, as a list.
    async fn features(&self) -> Vec<String> {
        self.0.feature_list()
    }
    /// The scopes it asks an installing organization for.
    async fn requested_scopes(&self) -> Vec<String> {
        self.0.scope_list()
    }
    /// Documentation URL.
    async fn docs_url(&self) -> Option<&str> {
        self.0.docs_url.as_deref()
    }
    /// Support URL.
    async fn support_url(&self) -> Option<&str> {
        self.0.support_url.as_deref()
    }
    /// Organizations that have it installed now.
    async fn install_count(&self) -> i64 {
        self.0.install_count
    }
    /// Average rating, 1 to 5 (null before the first review).
    async fn rating(&self) -> Option<f64> {
        self.0.rating()
    }
    /// How many reviews it has.
    async fn review_count(&self) -> i64 {
        self.0.rating_count
    }
    /// The organization that publishes it.
    async fn developer(&self, ctx: &Context<'_>) -> async_graphql::Result<AppDeveloper> {
        let org = ctx
            .data_unchecked::<Loaders>()
            .get()
            .load_one(self.0.org_id.clone())
            .await
            .map_err(loader_error)?
            .ok_or(crate::error::Error::NotFound("organization"))?;
        Ok(AppDeveloper { id: org.id.to_string().into(), name: org.name })
    }
    /// Its reviews, newest first.
    #[graphql(complexity = "page_complexity(first, last, child_complexity)")]
    async fn reviews(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start, 1–100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1–100.")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
    ) -> async_graphql::Result<Conn<AppReview>> {
        let page = PageRequest::from_args(first, after, last, before)?;
        let rows = reviews::list_reviews(ctx.app(), &self.0, &page).await?;
        Ok(connection(rows, |r| r.id.to_string(), AppReview))
    }
    /// The signed-in user's review of it, if they wrote one.
    async fn my_review(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<AppReview>> {
        let Some(user) = ctx.principal().ok().and_then(|p| p.user_id()) else {
            return Ok(None);
        };
        Ok(reviews::review_by(ctx.app(), &self.0, user).await?.map(AppReview))
    }
    /// Its OAuth client settings (its owner organization only; null for everyone else).
    async fn oauth_config(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<OAuthClientConfig>> {
        if !self.owned(ctx) {
            return Ok(None);
        }
        Ok(Some(OAuthClientConfig { row: service::client_of(ctx.app(), &self.0.id).await? }))
    }
    /// Marketplace analytics over a period (its owner organization only).
    async fn analytics(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The period (default: the last 30 days).",
            default_with = "crate::usage::graphql::UsagePeriod::Last30Days"
        )]
        period: crate::usage::graphql::UsagePeriod,
    ) -> async_graphql::Result<AppAnalytics> {
        let (start, end) = period.range(ctx.app().clock.now_ms());
        let s = super::analytics::app_stats(ctx.app(), ctx.principal()?, self.0.id.as_str(), start, end).await?;
        Ok(AppAnalytics {
            start: DateTime(start),
            end: DateTime(end),
            installs: s.installs,
            uninstalls: s.uninstalls,
            active_installations: s.active_installations,
            api_calls: s.api_calls,
            api_errors: s.api_errors,
            rating: s.rating,
            review_count: s.review_count,
            new_reviews: s.new_reviews,
        })
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When it was last changed.
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
}

/// An app's marketplace figures over a period.
#[derive(SimpleObject)]
pub struct AppAnalytics {
    /// First instant covered.
    pub start: DateTime,
    /// First instant after the period.
    pub end: DateTime,
    /// Installations made in the period (a reinstall counts again).
    pub installs: i64,
    /// Uninstalls in the period (deprecating the app uninstalls it everywhere).
    pub uninstalls: i64,
    /// Organizations that have it installed now.
    pub active_installations: i64,
    /// Calls the app made with its access tokens, in every installing organization (whole UTC days from the period's first).
    pub api_calls: i64,
    /// Those calls answered with an error (4xx or 5xx).
    pub api_errors: i64,
    /// Average rating now (null before the first review).
    pub rating: Option<f64>,
    /// Reviews now.
    pub review_count: i64,
    /// Reviews written in the period.
    pub new_reviews: i64,
}

impl MarketplaceApp {
    /// Whether the caller acts for the app's owner organization.
    fn owned(&self, ctx: &Context<'_>) -> bool {
        ctx.principal().is_ok_and(|p| p.org_id == self.0.org_id && p.has_scope("apps:read"))
    }
}

/// A user's review of an app.
pub struct AppReview(pub ReviewRow);

/// A user's review of an app.
#[Object]
impl AppReview {
    /// Global id (`rev_…`).
    pub async fn id(&self) -> ID {
        self.0.id.clone().into()
    }
    /// 1 to 5 stars.
    async fn rating(&self) -> i64 {
        self.0.rating
    }
    /// What the reviewer wrote.
    async fn comment(&self) -> Option<&str> {
        self.0.comment.as_deref()
    }
    /// Users who found it helpful.
    async fn helpful_count(&self) -> i64 {
        self.0.helpful_count
    }
    /// The reviewer's display name.
    async fn reviewer_name(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let user =
            ctx.data_unchecked::<Loaders>().get().load_one(self.0.user_id.clone()).await.map_err(loader_error)?;
        Ok(user.map(|u| u.name))
    }
    /// The reviewer (needs `user:read`).
    #[graphql(guard = "Scope(\"user:read\")")]
    async fn reviewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .get()
            .load_one(self.0.user_id.clone())
            .await
            .map_err(loader_error)?
            .map(User))
    }
    /// The reviewed app's id.
    async fn app_id(&self) -> ID {
        self.0.app_id.clone().into()
    }
    /// When it was written.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// When it was last changed.
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
}

/// A new app (created in DRAFT).
#[derive(InputObject)]
pub struct CreateAppInput {
    /// 1 to 100 characters.
    pub name: String,
    /// Unique URL-safe name (3–60 lowercase letters, digits, hyphens); default: from the name.
    pub slug: Option<String>,
    /// 1 to 500 characters.
    pub description: String,
    /// Up to 20,000 characters (Markdown).
    pub long_description: Option<String>,
    /// Marketplace category.
    pub category: AppCategory,
    /// Icon image URL (https).
    pub icon_url: Option<String>,
    /// Version (default `1.0.0`).
    pub version: Option<String>,
    /// Price (default FREE).
    pub pricing: Option<AppPricingInput>,
    /// What it does, up to 20 lines.
    #[graphql(default)]
    pub features: Vec<String>,
    /// The scopes it will ask installing organizations for (not `*`).
    pub requested_scopes: Vec<String>,
    /// Documentation URL (https).
    pub docs_url: Option<String>,
    /// Support URL (https).
    pub support_url: Option<String>,
    /// Exact redirect URIs for the authorization flow (https, or http on localhost; at most 10).
    #[graphql(default)]
    pub redirect_uris: Vec<String>,
    /// CONFIDENTIAL (default; gets a client secret) or PUBLIC.
    #[graphql(default_with = "OAuthClientType::Confidential")]
    pub client_type: OAuthClientType,
    /// Access token lifetime in seconds, 60 to 86400 (default 3600).
    pub access_token_lifetime: Option<i64>,
    /// Refresh token lifetime in seconds, 3600 to 31536000 (default 2592000, 30 days).
    pub refresh_token_lifetime: Option<i64>,
    /// The app's own rate limits, within each installing organization's plan.
    pub rate_limit: Option<RateLimitOverride>,
}

/// Changes to an app; omitted fields stay as they are, `null` clears an optional one.
#[derive(InputObject)]
pub struct UpdateAppInput {
    /// 1 to 100 characters.
    pub name: Option<String>,
    /// A new unique slug.
    pub slug: Option<String>,
    /// 1 to 500 characters.
    pub description: Option<String>,
    /// Up to 20,000 characters (Markdown).
    pub long_description: Option<String>,
    /// Marketplace category.
    pub category: Option<AppCategory>,
    /// Icon image URL (https); null removes it.
    pub icon_url: MaybeUndefined<String>,
    /// Version.
    pub version: Option<String>,
    /// Price.
    pub pricing: Option<AppPricingInput>,
    /// What it does, up to 20 lines (replaces the list).
    pub features: Option<Vec<String>>,
    /// The scopes it asks for (replaces the list; not `*`).
    pub requested_scopes: Option<Vec<String>>,
    /// Documentation URL; null removes it.
    pub docs_url: MaybeUndefined<String>,
    /// Support URL; null removes it.
    pub support_url: MaybeUndefined<String>,
    /// Exact redirect URIs (replaces the list).
    pub redirect_uris: Option<Vec<String>>,
    /// Access token lifetime in seconds, 60 to 86400.
    pub access_token_lifetime: Option<i64>,
    /// Refresh token lifetime in seconds, 3600 to 31536000.
    pub refresh_token_lifetime: Option<i64>,
    /// The app's own rate limits; null removes them.
    pub rate_limit: MaybeUndefined<RateLimitOverride>,
}

/// A new app and, for a confidential client, its client secret — shown this once.
#[derive(SimpleObject)]
pub struct CreateAppPayload {
    /// The app, in DRAFT.
    pub app: MarketplaceApp,
    /// The client secret (`gko_cs_…`); null for a public client. It is never shown again.
    pub client_secret: Option<String>,
}

/// A new client secret, shown this once.
#[derive(SimpleObject)]
pub struct RotateAppClientSecretPayload {
    /// The app.
    pub app: MarketplaceApp,
    /// The new client secret (`gko_cs_…`).
    pub client_secret: String,
    /// When the previous secrets stop working.
    pub previous_secret_expires_at: DateTime,
}

/// What was deleted.
#[derive(SimpleObject)]
pub struct DeleteAppPayload {
    /// The deleted app's id.
    pub deleted_id: ID,
}

/// A review written or updated.
#[derive(SimpleObject)]
pub struct SubmitAppReviewPayload {
    /// The review.
    pub review: AppReview,
    /// True when this is the user's first review of the app; false when it updated theirs.
    pub created: bool,
}

/// What was deleted.
#[derive(SimpleObject)]
pub struct DeleteAppReviewPayload {
    /// The deleted review's id.
    pub deleted_id: ID,
}

#[derive(Default)]
pub struct AppsQuery;

#[Object]
impl AppsQuery {
    /// The marketplace: ACTIVE apps, searched by the words of their name and description (every
    /// word, as a prefix), filtered and sorted. Readable without signing in.
    #[graphql(complexity = "page_complexity(first, last, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn marketplace_apps(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Words to find in the name or description.")] search: Option<String>,
        #[graphql(desc = "Only this category.")] category: Option<AppCategory>,
        #[graphql(desc = "Only apps rated at least this (0–5).")] min_rating: Option<f64>,
        #[graphql(desc = "Only this pricing model.")] pricing_model: Option<AppPricingModel>,
        #[graphql(desc = "Only featured (true) or only not featured (false) apps.")] featured: Option<bool>,
        #[graphql(desc = "Order (default POPULAR).")] sort: Option<MarketplaceSort>,
        #[graphql(desc = "Page size from the start, 1–100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1–100.")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
    ) -> async_graphql::Result<Conn<MarketplaceApp>> {
        let page = PageRequest::from_args(first, after, last, before)?;
        let filter = MarketFilter {
            search,
            category: category.map(Into::into),
            min_rating,
            pricing_model: pricing_model.map(Into::into),
            featured,
        };
        let sort: Sort = sort.unwrap_or_default().into();
        let rows = marketplace::search_apps(ctx.app(), ctx.principal().ok(), &filter, sort, &page).await?;
        Ok(connection(rows, |a| marketplace::position_of(sort, a), MarketplaceApp))
    }

    /// Apps the platform administrators feature, most installed first.
    async fn featured_apps(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<MarketplaceApp>> {
        let rows = marketplace::featured_apps(ctx.app(), ctx.principal().ok()).await?;
        Ok(rows.into_iter().map(MarketplaceApp).collect())
    }

    /// An app by id or slug: a listed one for anyone, any of your organization's own.
    async fn app(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "App id (`app_…`).")] id: Option<ID>,
        #[graphql(desc = "Or its slug.")] slug: Option<String>,
    ) -> async_graphql::Result<MarketplaceApp> {
        let principal = ctx.principal().ok();
        let row = match (id, slug) {
            (Some(id), None) => service::get_app(ctx.app(), principal, &id).await?,
            (None, Some(slug)) => service::get_app_by_slug(ctx.app(), principal, &slug).await?,
            _ => return Err(crate::error::Error::bad_input("id", "pass `id` or `slug`, one of them").into()),
        };
        Ok(MarketplaceApp(row))
    }

    /// Your organization's apps, whatever their status, newest first.
    #[graphql(guard = "Scope(\"apps:read\")", complexity = "page_complexity(first, last, child_complexity)")]
    async fn my_apps(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only apps in this status.")] status: Option<AppStatus>,
        #[graphql(desc = "Page size from the start, 1–100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1–100.")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
    ) -> async_graphql::Result<Conn<MarketplaceApp>> {
        let page = PageRequest::from_args(first, after, last, before)?;
        let filter = OwnFilter { status: status.map(Into::into) };
        let rows = service::list_org_apps(ctx.app(), ctx.principal()?, &filter, &page).await?;
        Ok(connection(rows, |a| a.id.to_string(), MarketplaceApp))
    }

    /// The review queue: submitted apps (platform administrators).
    #[graphql(complexity = "page_complexity(first, last, child_complexity)")]
    async fn pending_apps(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size from the start, 1–100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after.")] after: Option<String>,
        #[graphql(desc = "Page size from the end, 1–100.")] last: Option<i32>,
        #[graphql(desc = "Cursor to continue before.")] before: Option<String>,
    ) -> async_graphql::Result<Conn<MarketplaceApp>> {
        let page = PageRequest::from_args(first, after, last, before)?;
        let rows = service::list_pending_apps(ctx.app(), ctx.principal()?, &page).await?;
        Ok(connection(rows, |a| a.id.to_string(), MarketplaceApp))
    }
}

#[derive(Default)]
pub struct AppsMutation;

#[Object]
impl AppsMutation {
    /// Creates an app in DRAFT for your organization. A confidential client's secret is in the
    /// answer, once.
    #[graphql(guard = "Scope(\"apps:write\")")]
    async fn create_app(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new app.")] input: CreateAppInput,
    ) -> async_graphql::Result<CreateAppPayload> {
        let create = CreateApp {
            name: input.name,
            slug: input.slug,
            description: input.description,
            long_description: input.long_description,
            category: input.category.into(),
            icon_url: input.icon_url,
            version: input.version,
            pricing: input.pricing.map(Into::into),
            features: input.features,
            scopes: input.requested_scopes,
            docs_url: input.docs_url,
            support_url: input.support_url,
            redirect_uris: input.redirect_uris,
            client_type: input.client_type.into(),
            access_token_ttl_secs: input.access_token_lifetime,
            refresh_token_ttl_secs: input.refresh_token_lifetime,
            rate_limit: input.rate_limit.map(Into::into),
        };
        let (row, client_secret) = service::create_app(ctx.app(), ctx.principal()?, create).await?;
        Ok(CreateAppPayload { app: MarketplaceApp(row), client_secret })
    }

    /// Changes your app's listing or client settings (not while it is under review).
    #[graphql(guard = "Scope(\"apps:write\")")]
    async fn update_app(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "App id.")] id: ID,
        #[graphql(desc = "The changes.")] input: UpdateAppInput,
    ) -> async_graphql::Result<MarketplaceApp> {
        let update = UpdateApp {
            name: input.name,
            slug: input.slug,
            description: input.description,
            long_description: input.long_description,
            category: input.category.map(Into::into),
            icon_url: patch(input.icon_url, |u| u),
            version: input.version,
            pricing: input.pricing.map(Into::into),
            features: input.features,
            scopes: input.requested_scopes,
            docs_url: patch(input.docs_url, |u| u),
            support_url: patch(input.support_url, |u| u),
            redirect_uris: input.redirect_uris,
            access_token_ttl_secs: input.access_token_lifetime,
            refresh_token_ttl_secs: input.refresh_token_lifetime,
            rate_limit: patch(input.rate_limit, Into::into),
        };
        Ok(MarketplaceApp(service::update_app(ctx.app(), ctx.principal()?, &id, update).await?))
    }

    /// Deletes your app (not while ACTIVE or under review).
    #[graphql(guard = "Scope(\"apps:write\")")]
    async fn delete_app(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "App id.")] id: ID,
    ) -> async_graphql::Result<DeleteAppPayload> {
        let id = service::delete_app(ctx.app(), ctx.principal()?, &id).await?;
        Ok(DeleteAppPayload { deleted_id: id.into() })
    }

    /// Submits your DRAFT or REJECTED app for review.
    #[graphql(guard = "Scope(\"apps:write\")")]
    async fn submit_app(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "App id.")] id: ID,
    ) -> async_graphql::Result<MarketplaceApp> {
        Ok(MarketplaceApp(service::submit_app(ctx.app(), ctx.principal()?, &id).await?))
    }

    /// Approves a submitted app (platform administrators).
    async fn approve_app(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "App id.")] id: ID,
    ) -> async_graphql::Result<MarketplaceApp> {
        Ok(MarketplaceApp(service::approve_app(ctx.app(), ctx.principal()?, &id).await?))
    }

    /// Rejects a submitted app with a reason its owner sees (platform administrators).
    async fn reject_app(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "App id.")] id: ID,
        #[graphql(desc = "Why, for the app's owner (1–2000 characters).")] reason: String,
    ) -> async_graphql::Result<MarketplaceApp> {
        Ok(MarketplaceApp(service::reject_app(ctx.app(), ctx.principal()?, &id, &reason).await?))
    }

    /// Publishes your APPROVED app to the marketplace (ACTIVE).
    #[graphql(guard = "Scope(\"apps:write\")")]
    async fn publish_app(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "App id.")] id: ID,
    ) -> async_graphql::Result<MarketplaceApp> {
        Ok(MarketplaceApp(service::publish_app(ctx.app(), ctx.principal()?, &id).await?))
    }

    /// Takes an ACTIVE app off the marketplace for good (its owner, or a platform administrator).
    async fn deprecate_app(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "App id.")] id: ID,
        #[graphql(desc = "Why (1–2000 characters).")] reason: Option<String>,
    ) -> async_graphql::Result<MarketplaceApp> {
        Ok(MarketplaceApp(service::deprecate_app(ctx.app(), ctx.principal()?, &id, reason.as_deref()).await?))
    }

    /// Features or unfeatures an ACTIVE app (platform administrators).
    async fn set_app_featured(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "App id.")] id: ID,
        #[graphql(desc = "Featured or not.")] featured: bool,
    ) -> async_graphql::Result<MarketplaceApp> {
        Ok(MarketplaceApp(service::set_featured(ctx.app(), ctx.principal()?, &id, featured).await?))
    }

    /// Issues a new client secret for your confidential app, shown once. The previous secrets keep
    /// working for `expireOldInSeconds` (default 0: they stop now).
    #[graphql(guard = "Scope(\"apps:write\")")]
    async fn rotate_app_client_secret(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "App id.")] id: ID,
        #[graphql(desc = "0 to 2592000 seconds.")] expire_old_in_seconds: Option<i64>,
    ) -> async_graphql::Result<RotateAppClientSecretPayload> {
        let (row, client_secret, old) =
            service::rotate_client_secret(ctx.app(), ctx.principal()?, &id, expire_old_in_seconds).await?;
        Ok(RotateAppClientSecretPayload {
            app: MarketplaceApp(row),
            client_secret,
            previous_secret_expires_at: old.into(),
        })
    }

    /// Writes your review of an ACTIVE app, or updates the one you wrote.
    #[graphql(guard = "Scope(\"marketplace:write\")")]
    async fn submit_app_review(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "App id.")] app_id: ID,
        #[graphql(desc = "1 to 5 stars.")] rating: i32,
        #[graphql(desc = "Up to 5000 characters.")] comment: Option<String>,
    ) -> async_graphql::Result<SubmitAppReviewPayload> {
        let (row, created) =
            reviews::submit_review(ctx.app(), ctx.principal()?, &app_id, rating as i64, comment).await?;
        Ok(SubmitAppReviewPayload { review: AppReview(row), created })
    }

    /// Deletes your review (platform administrators: any review).
    async fn delete_app_review(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Review id (`rev_…`).")] id: ID,
    ) -> async_graphql::Result<DeleteAppReviewPayload> {
        let id = reviews::delete_review(ctx.app(), ctx.principal()?, &id).await?;
        Ok(DeleteAppReviewPayload { deleted_id: id.into() })
    }

    /// Marks a review as helpful, once per user.
    #[graphql(guard = "Scope(\"marketplace:write\")")]
    async fn mark_review_helpful(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Review id (`rev_…`).")] id: ID,
    ) -> async_graphql::Result<AppReview> {
        Ok(AppReview(reviews::vote_helpful(ctx.app(), ctx.principal()?, &id).await?))
    }
}
