//! Operator sessions of the dashboard (see `migrations/0002_dashboard.sql`).

use sqlx::PgExecutor;

/// A live operator session: expiry is checked by the database clock.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionModel {
    /// The SHA-256 (hex) of the session cookie's token.
    pub token_sha256: String,
    /// The CSRF token of the session's forms.
    pub csrf_token: String,
}

/// Stores a new session that expires `ttl_secs` from now.
pub async fn insert_session(
    executor: impl PgExecutor<'_>,
    token_sha256: &str,
    csrf_token: &str,
    ttl_secs: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO operator_sessions (token_sha256, csrf_token, expires_at) \
         VALUES ($1, $2, now() + make_interval(secs => $3))",
    )
    .bind(token_sha256)
    .bind(csrf_token)
    .bind(ttl_secs as f64)
    .execute(executor)
    .await?;
    Ok(())
}

/// The session with this token hash, unless it expired.
pub async fn get_session(
    executor: impl PgExecutor<'_>,
    token_sha256: &str,
) -> sqlx::Result<Option<SessionModel>> {
    sqlx::query_as(
        "SELECT token_sha256, csrf_token FROM operator_sessions \
         WHERE token_sha256 = $1 AND expires_at > now()",
    )
    .bind(token_sha256)
    .fetch_optional(executor)
    .await
}

/// Ends a session (logout).
pub async fn delete_session(executor: impl PgExecutor<'_>, token_sha256: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM operator_sessions WHERE token_sha256 = $1")
        .bind(token_sha256)
        .execute(executor)
        .await?;
    Ok(())
}

/// Deletes expired sessions; called at each login, so the table stays small without a job.
pub async fn delete_expired_sessions(executor: impl PgExecutor<'_>) -> sqlx::Result<u64> {
    let result = sqlx::query("DELETE FROM operator_sessions WHERE expires_at <= now()")
        .execute(executor)
        .await?;
    Ok(result.rows_affected())
}
