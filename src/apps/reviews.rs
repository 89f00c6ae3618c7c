//! Reviews of marketplace apps: a rating of 1 to 5 and a comment, one per user per app (writing
//! again updates it), and helpful votes, one per user per review. The app's rating count and sum
//! change by increments in the transaction that changes the review, after the app's row is
//! locked, so its average stays exact under concurrent writes on both backends.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::model::{AppRow, ReviewRow, VoteRow};
use super::service::{Status, get_app};
use crate::app::App;
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::pagination::{Page, PageRequest};
use crate::platform::db::schema::{app_review_votes, app_reviews, apps};
use crate::platform::ids::{ReviewId, UserId};
use crate::{keyset_page, transaction, with_conn};

fn reviewer(principal: &Principal) -> Result<&UserId> {
    principal.require_scope("marketplace:write")?;
    principal.user_id().ok_or_else(|| Error::forbidden("reviews are written by signed-in users, not by API keys"))
}

/// Writes the user's review of an ACTIVE app, or updates the one they wrote. Returns the review
/// and whether it is new.
pub async fn submit_review(
    app: &App,
    principal: &Principal,
    app_id: &str,
    rating: i64,
    comment: Option<String>,
) -> Result<(ReviewRow, bool)> {
    principal.require_scope("marketplace:write")?;
    // The app first: an unknown or hidden app is NOT_FOUND whoever asks.
    let target = get_app(app, Some(principal), app_id).await?;
    let user = reviewer(principal)?.clone();
    if !(1..=5).contains(&rating) {
        return Err(Error::bad_input("rating", "must be a whole number from 1 to 5"));
    }
    let comment = match comment.as_deref().map(str::trim) {
        Some(c) if c.chars().count() > 5000 => {
            return Err(Error::bad_input("comment", "must be at most 5000 characters"));
        }
        Some("") | None => None,
        Some(c) => Some(c.to_string()),
    };
    if target.status() != Status::Active {
        return Err(Error::Conflict("only an app in the marketplace (ACTIVE) can be reviewed".into()));
    }
    if crate::accounts::service::role_in(app, &user, &target.org_id).await?.is_some() {
        return Err(Error::forbidden("members of an app's owner organization cannot review it"));
    }
    let now = app.clock.now_ms();
    let pg = app.db.is_postgres();
    let (review, created) = transaction!(app.db, c => {
        crate::lock_row!(c, pg, "apps", target.id.as_str());
        let existing: Option<ReviewRow> = app_reviews::table
            .filter(app_reviews::app_id.eq(&target.id))
            .filter(app_reviews::user_id.eq(&user))
            .select(ReviewRow::as_select())
            .first(c).await.optional()?;
        let (review, created, sum_delta, count_delta) = match existing {
            Some(old) => {
                let review: ReviewRow = diesel::update(app_reviews::table.find(&old.id))
                    .set((app_reviews::rating.eq(rating), app_reviews::comment.eq(&comment), app_reviews::updated_at.eq(now)))
                    .returning(ReviewRow::as_returning())
                    .get_result(c).await?;
                (review, false, rating - old.rating, 0)
            }
            None => {
                let row = ReviewRow {
                    id: ReviewId::generate(now),
                    app_id: target.id.clone(),
                    user_id: user.clone(),
                    rating,
                    comment: comment.clone(),
                    helpful_count: 0,
                    created_at: now,
                    updated_at: now,
                };
                diesel::insert_into(app_reviews::table).values(&row).execute(c).await?;
                (row, true, rating, 1)
            }
        };
        diesel::update(apps::table.find(&target.id))
            .set((apps::rating_sum.eq(apps::rating_sum + sum_delta), apps::rating_count.eq(apps::rating_count + count_delta)))
            .execute(c).await?;
        Ok::<_, Error>((review, created))
    })?;
    Ok((review, created))
}

async fn find_review(app: &App, id: &str) -> Result<ReviewRow> {
    let id: ReviewId = id.parse().map_err(|_| Error::NotFound("review"))?;
    let row: Option<ReviewRow> = with_conn!(app.db, c => {
        app_reviews::table.find(&id).select(ReviewRow::as_select()).first(c).await.optional()?
    });
    row.ok_or(Error::NotFound("review"))
}

/// Deletes a review: its author, or a platform administrator (moderation).
pub async fn delete_review(app: &App, principal: &Principal, id: &str) -> Result<ReviewId> {
    let review = find_review(app, id).await?;
    let is_admin = principal.is_platform_admin();
    if !is_admin {
        let user = reviewer(principal)?;
        if *user != review.user_id {
            return Err(Error::NotFound("review"));
        }
    }
    let pg = app.db.is_postgres();
    transaction!(app.db, c => {
        crate::lock_row!(c, pg, "apps", review.app_id.as_str());
        let gone: Option<ReviewRow> = diesel::delete(app_reviews::table.find(&review.id))
            .returning(ReviewRow::as_returning())
            .get_result(c).await.optional()?;
        let Some(gone) = gone else {
            return Err(Error::NotFound("review"));
        };
        diesel::update(apps::table.find(&gone.app_id))
            .set((apps::rating_sum.eq(apps::rating_sum - gone.rating), apps::rating_count.eq(apps::rating_count - 1)))
            .execute(c).await?;
        Ok::<_, Error>(())
    })?;
    Ok(review.id)
}

/// Marks a review as helpful, once per user (a second vote changes nothing). One's own review
/// cannot be voted for.
pub async fn vote_helpful(app: &App, principal: &Principal, id: &str) -> Result<ReviewRow> {
    let user = reviewer(principal)?.clone();
    let review = find_review(app, id).await?;
    // The review must belong to an app the principal sees.
    get_app(app, Some(principal), review.app_id.as_str()).await.map_err(|_| Error::NotFound("review"))?;
    if review.user_id == user {
        return Err(Error::forbidden("you cannot vote for your own review"));
    }
    let now = app.clock.now_ms();
    let vote = VoteRow { review_id: review.id.clone(), user_id: user, created_at: now };
    transaction!(app.db, c => {
        let n = diesel::insert_into(app_review_votes::table).values(&vote).on_conflict_do_nothing().execute(c).await?;
        let review: ReviewRow = if n == 1 {
            diesel::update(app_reviews::table.find(&review.id))
                .set(app_reviews::helpful_count.eq(app_reviews::helpful_count + 1))
                .returning(ReviewRow::as_returning())
                .get_result(c).await?
        } else {
            app_reviews::table.find(&review.id).select(ReviewRow::as_select()).first(c).await?
        };
        Ok::<_, Error>(review)
    })
}

/// An app's reviews, newest first.
pub async fn list_reviews(app: &App, target: &AppRow, page: &PageRequest) -> Result<Page<ReviewRow>> {
    let id = &target.id;
    macro_rules! base {
        () => {
            app_reviews::table.filter(app_reviews::app_id.eq(id)).into_boxed()
        };
    }
    let (rows, total) = with_conn!(app.db, c => keyset_page!(c, base!(), app_reviews::id, ReviewRow, page));
    Ok(Page::from_rows(rows, page, total))
}

/// The user's review of an app, if they wrote one.
pub async fn review_by(app: &App, target: &AppRow, user: &UserId) -> Result<Option<ReviewRow>> {
    Ok(with_conn!(app.db, c => {
        app_reviews::table
            .filter(app_reviews::app_id.eq(&target.id))
            .filter(app_reviews::user_id.eq(user))
            .select(ReviewRow::as_select())
            .first(c).await.optional()?
    }))
}
