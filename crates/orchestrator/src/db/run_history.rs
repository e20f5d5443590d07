//! What the dashboard reads of runs beyond the latest: one run by id, and the runs before it.

use sqlx::PgExecutor;
use time::OffsetDateTime;

use protocol::ArchiveState;

use super::RunId;
use super::runs::{RunModel, run_columns};

/// The most recent runs, newest first, at most `limit`; their counts are
/// [`runs::get_task_counts`](super::runs::get_task_counts).
pub async fn get_recent_runs(
    executor: impl PgExecutor<'_>,
    limit: i64,
) -> sqlx::Result<Vec<RunModel>> {
    sqlx::query_as(concat!(
        "SELECT ",
        run_columns!(),
        " FROM runs ORDER BY seq DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// One run by id, whatever its state.
pub async fn get_run(executor: impl PgExecutor<'_>, id: RunId) -> sqlx::Result<Option<RunModel>> {
    sqlx::query_as(concat!(
        "SELECT ",
        run_columns!(),
        " FROM runs WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await
}

/// The database clock, so that heartbeat ages shown match how the timeout checker sees them.
pub async fn get_database_now(executor: impl PgExecutor<'_>) -> sqlx::Result<OffsetDateTime> {
    sqlx::query_scalar("SELECT now()").fetch_one(executor).await
}

/// Whether the archive of a run can be downloaded.
pub fn archive_key(run: &RunModel) -> Option<&str> {
    match run.archive_state {
        ArchiveState::Uploaded => run.archive_key.as_deref(),
        _ => None,
    }
}
