//! The heartbeat timeout checker: claimed tasks whose runner went silent are failed, by the
//! database clock.

use std::time::Duration;

use sqlx::PgPool;

use crate::db::tasks::{self, TaskModel};

/// Fails every claimed task whose last heartbeat is at least `timeout` old (by the database
/// clock) with `error_type: heartbeat_timeout`, for the orchestrator; returns those tasks.
///
/// Each task is read with its version and then failed with a compare-and-set on `state`,
/// `lock_version` and the heartbeat's age: a task that was completed or failed in between
/// (which bumps `lock_version`), or whose runner sent a heartbeat in between, is left alone.
pub async fn check_heartbeats(db: &PgPool, timeout: Duration) -> sqlx::Result<Vec<TaskModel>> {
    let timeout_secs = timeout.as_secs_f64();
    let message = format!(
        "no heartbeat arrived for {} seconds (HEARTBEAT_TIMEOUT_SECS): the runner or its host \
         stopped answering",
        timeout.as_secs()
    );
    let mut failed = Vec::new();
    for silent in tasks::get_silent_tasks(db, timeout_secs).await? {
        if let Some(task) = tasks::update_task_timed_out(db, silent, timeout_secs, &message).await?
        {
            tracing::warn!(
                task_id = %task.id,
                runner_id = task.runner_id.as_deref(),
                "task failed: its heartbeats stopped"
            );
            failed.push(task);
        }
    }
    Ok(failed)
}
