//! The audit log's one write, shared by every use case that audits inside its own transaction.

use integration::access::audit::Actor;
use sqlx::PgConnection;

pub(crate) async fn record(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    target: Option<&str>,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO audit_log (actor_id, actor_email, action, target, detail, client_ip)
         VALUES ($1, $2, $3, $4, $5, $6)",
        actor.id,
        actor.email,
        action,
        target,
        detail,
        actor.client_ip
    )
    .execute(conn)
    .await?;
    Ok(())
}
