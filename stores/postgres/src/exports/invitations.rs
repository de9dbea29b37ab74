//! The employees this console created and their one invitation each, on PostgreSQL.

use integration::{
    db,
    exports::{invitations::Standing, storage::Invitations},
};

use crate::PgStore;

#[async_trait::async_trait]
impl Invitations for PgStore {
    async fn created(&self, export_id: i64, employee_id: &str) -> Result<(), sqlx::Error> {
        let now = db::now_text();
        let mut tx = self.pool.begin().await?;
        sqlx::query!(
            "UPDATE exports SET hibob_employee_id = $1, updated_at = $2 WHERE id = $3",
            employee_id,
            now,
            export_id
        )
        .execute(&mut *tx)
        .await?;
        // a second export finding the same employee leaves the first one's row as it was
        sqlx::query!(
            "INSERT INTO console_employees (employee_id, export_id, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (employee_id) DO NOTHING",
            employee_id,
            export_id,
            now
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    async fn standing(&self, employee_id: &str) -> Result<Standing, sqlx::Error> {
        let row = sqlx::query!(
            "SELECT invite_started_at, invited_at FROM console_employees WHERE employee_id = $1",
            employee_id
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(Standing::from_marks(
            row.map(|r| (r.invite_started_at, r.invited_at)),
        ))
    }

    async fn start(&self, employee_id: &str, export_id: i64) -> Result<bool, sqlx::Error> {
        let now = db::now_text();
        let mut tx = self.pool.begin().await?;
        // a conditional UPDATE: a concurrent start waits on the employee's row, then reads it
        // again marked and changes nothing, so exactly one attempt gets to ask HiBob
        let done = sqlx::query!(
            "UPDATE console_employees SET invite_started_at = $1
             WHERE employee_id = $2 AND invite_started_at IS NULL AND invited_at IS NULL",
            now,
            employee_id
        )
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query!(
            "UPDATE exports SET invite_started_at = $1, updated_at = $1 WHERE id = $2",
            now,
            export_id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn clear(&self, employee_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "UPDATE console_employees SET invite_started_at = NULL
             WHERE employee_id = $1 AND invited_at IS NULL",
            employee_id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn settle(&self, employee_id: &str) -> Result<(), sqlx::Error> {
        let now = db::now_text();
        sqlx::query!(
            "UPDATE console_employees SET invited_at = $1
             WHERE employee_id = $2 AND invited_at IS NULL",
            now,
            employee_id
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
