//! What an export has done outside, marked on its row so that an attempt resumed after a cut-off
//! does not do it again blindly: the CV uploaded, the create sent to HiBob, the invitation asked
//! for, the comment posted on the Pinpoint application. Each "started" mark is written just before
//! the call and cleared when the service answers with a refusal (it did nothing).

use sqlx::SqlitePool;

use crate::db;

pub async fn mark_cv_uploaded(pool: &SqlitePool, id: i64) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    sqlx::query!(
        "UPDATE exports SET cv_uploaded = 1, updated_at = ? WHERE id = ?",
        now,
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether an earlier attempt sent HiBob the create and may have been cut off before it heard
/// the answer or saved the employee id: the next attempt looks the e-mail up first.
pub async fn create_sent(pool: &SqlitePool, id: i64) -> Result<bool, sqlx::Error> {
    let sent = sqlx::query_scalar!("SELECT create_sent_at FROM exports WHERE id = ?", id)
        .fetch_optional(pool)
        .await?;
    Ok(sent.flatten().is_some())
}

/// Written just before HiBob is asked to create the employee (see [`create_sent`]).
pub async fn mark_create_sent(pool: &SqlitePool, id: i64) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    sqlx::query!(
        "UPDATE exports SET create_sent_at = ?1, updated_at = ?1 WHERE id = ?2",
        now,
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// HiBob answered the create with a refusal, so it created nobody.
pub async fn clear_create_sent(pool: &SqlitePool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query!("UPDATE exports SET create_sent_at = NULL WHERE id = ?", id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Where the export's onboarding invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invitation {
    NotSent,
    /// An attempt asked HiBob and was cut off before it heard back.
    Interrupted,
    Settled,
}

impl Invitation {
    /// From the export's marks (`invite_started_at`, `invited_at`), `None` when there is no such
    /// export.
    pub fn from_marks(marks: Option<(Option<String>, Option<String>)>) -> Self {
        match marks {
            Some((_, Some(_))) => Invitation::Settled,
            Some((Some(_), None)) => Invitation::Interrupted,
            _ => Invitation::NotSent,
        }
    }
}

pub async fn invitation(pool: &SqlitePool, id: i64) -> Result<Invitation, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT invite_started_at, invited_at FROM exports WHERE id = ?",
        id
    )
    .fetch_optional(pool)
    .await?
    .map(|r| (r.invite_started_at, r.invited_at));
    Ok(Invitation::from_marks(row))
}

/// HiBob answered the invitation with an error: nothing was sent, so a later attempt may ask again.
pub async fn clear_invite_started(pool: &SqlitePool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE exports SET invite_started_at = NULL WHERE id = ? AND invited_at IS NULL",
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn mark_invited(pool: &SqlitePool, id: i64) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    sqlx::query!(
        "UPDATE exports SET invited_at = ?1, updated_at = ?1 WHERE id = ?2",
        now,
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Written just before Pinpoint is asked to post the comment; true when an earlier attempt had
/// written it and never heard back, so its comment may have been posted.
pub async fn start_comment(pool: &SqlitePool, id: i64) -> Result<bool, sqlx::Error> {
    let now = db::now_text();
    let earlier = sqlx::query_scalar!(
        r#"UPDATE exports SET comment_started_at = COALESCE(comment_started_at, ?1)
           WHERE id = ?2
           RETURNING comment_started_at IS NOT ?1 AS "earlier!: bool""#,
        now,
        id
    )
    .fetch_optional(pool)
    .await?;
    Ok(earlier.unwrap_or(false))
}

/// Pinpoint answered the comment with a refusal: nothing was posted.
pub async fn clear_comment_started(pool: &SqlitePool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE exports SET comment_started_at = NULL WHERE id = ? AND comment_posted = 0",
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn mark_comment_posted(pool: &SqlitePool, id: i64) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    sqlx::query!(
        "UPDATE exports SET comment_posted = 1, updated_at = ? WHERE id = ?",
        now,
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}
