//! What the dashboard reads of runs beyond the latest: one run by id, and the runs before it.

use protocol::RunState;
use sqlx::PgExecutor;
use time::OffsetDateTime;

use super::RunId;
use super::runs::{ArchiveState, RunModel};

/// A run in the list of past runs, with its task counts.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunHistoryModel {
    /// The run id.
    pub id: RunId,
    /// Running or complete.
    #[sqlx(try_from = "String")]
    pub state: RunState,
    /// The Ruby version benchmarked.
    pub ruby_version: String,
    /// When the run was created.
    pub created_at: OffsetDateTime,
    /// When the run was ended early.
    pub stopped_at: Option<OffsetDateTime>,
    /// When the archive was uploaded.
    pub completed_at: Option<OffsetDateTime>,
    /// How many tasks the run has left (pending tasks of a stopped run are deleted).
    pub total: i64,
    /// How many completed.
    pub completed: i64,
    /// How many failed.
    pub failed: i64,
}

/// The most recent runs, newest first, at most `limit`.
pub async fn get_recent_runs(
    executor: impl PgExecutor<'_>,
    limit: i64,
) -> sqlx::Result<Vec<RunHistoryModel>> {
    sqlx::query_as(
        "SELECT r.id, r.state, r.ruby_version, r.created_at, r.stopped_at, r.completed_at, \
             count(t.id) AS total, \
             count(t.id) FILTER (WHERE t.state = 'completed') AS completed, \
             count(t.id) FILTER (WHERE t.state = 'failed') AS failed \
         FROM (SELECT * FROM runs ORDER BY seq DESC LIMIT $1) AS r \
             LEFT JOIN tasks t ON t.run_id = r.id \
         GROUP BY r.id, r.seq, r.state, r.ruby_version, r.created_at, r.stopped_at, \
             r.completed_at \
         ORDER BY r.seq DESC",
    )
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// One run by id, whatever its state.
pub async fn get_run(executor: impl PgExecutor<'_>, id: RunId) -> sqlx::Result<Option<RunModel>> {
    sqlx::query_as(
        "SELECT id, state, ruby_version, runs_per_instance_type, ruby_bench, debug_mode, \
             created_at, stopped_at, completed_at, archive_state, archive_key \
         FROM runs WHERE id = $1",
    )
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
