//! The employees this console created in HiBob and the one welcome invitation each may get.
//! Kept per employee, not per export row: a plugin submit and the webhook export of one hire
//! are two rows for one employee, and an employee HiBob already had is never invited.

use sqlx::SqlitePool;

use crate::db;

/// Where one employee's invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// HiBob had the employee before the console looked: not ours to invite.
    NotCreatedHere,
    /// Created here and not invited yet.
    Owed,
    /// An attempt asked HiBob and was cut off before it heard back.
    Interrupted,
    Settled,
}

impl Standing {
    /// From the employee's marks (`invite_started_at`, `invited_at`), `None` when the console did
    /// not create the employee.
    pub fn from_marks(marks: Option<(Option<String>, Option<String>)>) -> Self {
        match marks {
            None => Standing::NotCreatedHere,
            Some((_, Some(_))) => Standing::Settled,
            Some((Some(_), None)) => Standing::Interrupted,
            Some((None, None)) => Standing::Owed,
        }
    }
}

/// Keeps the employee `export_id` just created (or found after its own create went unanswered)
/// on the export and as one of the console's own, in one write, so a crash cannot leave one
/// without the other.
pub async fn created(
    pool: &SqlitePool,
    export_id: i64,
    employee_id: &str,
) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    let mut tx = db::begin_write(pool).await?;
    sqlx::query!(
        "UPDATE exports SET hibob_employee_id = ?, updated_at = ? WHERE id = ?",
        employee_id,
        now,
        export_id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO console_employees (employee_id, export_id, created_at) VALUES (?, ?, ?)
         ON CONFLICT (employee_id) DO NOTHING",
        employee_id,
        export_id,
        now
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

pub async fn standing(pool: &SqlitePool, employee_id: &str) -> Result<Standing, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT invite_started_at, invited_at FROM console_employees WHERE employee_id = ?",
        employee_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(Standing::from_marks(
        row.map(|r| (r.invite_started_at, r.invited_at)),
    ))
}

/// Written just before HiBob is asked to invite, on the employee and on export `export_id`, in
/// one write, so the moment a cut-off attempt leaves marked is as short as it can be. False when
/// another attempt got there first, which must then not be asked again.
pub async fn start(
    pool: &SqlitePool,
    employee_id: &str,
    export_id: i64,
) -> Result<bool, sqlx::Error> {
    let now = db::now_text();
    let mut tx = db::begin_write(pool).await?;
    let done = sqlx::query!(
        "UPDATE console_employees SET invite_started_at = ?
         WHERE employee_id = ? AND invite_started_at IS NULL AND invited_at IS NULL",
        now,
        employee_id
    )
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query!(
        "UPDATE exports SET invite_started_at = ?1, updated_at = ?1 WHERE id = ?2",
        now,
        export_id
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// HiBob answered with an error, so it invited nobody: a later attempt may ask again.
pub async fn clear(pool: &SqlitePool, employee_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE console_employees SET invite_started_at = NULL
         WHERE employee_id = ? AND invited_at IS NULL",
        employee_id
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The invitation is settled: sent, refused for good, or not to be asked again.
pub async fn settle(pool: &SqlitePool, employee_id: &str) -> Result<(), sqlx::Error> {
    let now = db::now_text();
    sqlx::query!(
        "UPDATE console_employees SET invited_at = ? WHERE employee_id = ? AND invited_at IS NULL",
        now,
        employee_id
    )
    .execute(pool)
    .await?;
    Ok(())
}
