//! Runs: starting one with its tasks, and the latest run's status.

use protocol::{ArchiveState, ArchiveStatus, RunConfig, RunStatus, StartRunResponse, TaskSummary};

use crate::AppState;
use crate::db::runs;
use crate::db::{RunId, is_unique_violation, tasks};
use crate::error::{AppError, AppResult, bad_request, conflict, no_run_yet};

/// The most tasks one run may have; a bigger run is a typo in `runs_per_instance_type`.
pub const MAX_TASKS_PER_RUN: usize = 100_000;

/// Creates a run and its tasks in the seed's order, in one transaction.
pub async fn start_run(state: &AppState, config: &RunConfig) -> AppResult<StartRunResponse> {
    let task_count = config.task_count();
    if task_count > MAX_TASKS_PER_RUN {
        return Err(bad_request(format!(
            "the config makes {task_count} tasks, more than the {MAX_TASKS_PER_RUN} a run may have: lower \"runs_per_instance_type\" or list fewer instance types"
        )));
    }

    let mut tx = state.db.begin().await?;
    if let Some(running) = runs::get_running_run(&mut *tx).await? {
        return Err(run_in_progress(running.id));
    }
    let id = match config.run_id {
        Some(id) => RunId(id),
        None => runs::get_next_run_id(&mut *tx).await?,
    };
    let run = match runs::insert_run(&mut *tx, id, config).await {
        Ok(run) => run,
        Err(err) if is_unique_violation(&err, "runs_pkey") => {
            return Err(conflict(format!(
                "run {id} already exists: send another \"run_id\" or leave it out"
            )));
        }
        // Another start won the race between the check above and this insert.
        Err(err) if is_unique_violation(&err, "runs_one_running") => {
            return Err(conflict(
                "a run is already in progress: wait for it to complete or stop it",
            ));
        }
        Err(err) => return Err(err.into()),
    };
    let tasks = tasks::insert_tasks(&mut *tx, run.id, &config.tasks()).await?;
    tx.commit().await?;

    tracing::info!(run_id = %run.id, tasks = tasks.len(), "run started");
    let tasks: Vec<TaskSummary> = tasks.into_iter().map(TaskSummary::from).collect();
    Ok(StartRunResponse {
        run_id: run.id.0,
        tasks_created: tasks.len() as u64,
        tasks,
    })
}

fn run_in_progress(id: RunId) -> AppError {
    conflict(format!(
        "run {id} is still in progress: wait for it to complete or stop it"
    ))
}

/// The latest run with its task counts; `gzip_url` is presigned afresh on every call.
pub async fn get_run(state: &AppState) -> AppResult<RunStatus> {
    let Some(run) = runs::get_latest_run(&state.db).await? else {
        return Err(no_run_yet());
    };
    let counts = runs::get_task_counts(&state.db, &[run.id])
        .await?
        .remove(&run.id)
        .unwrap_or_default()
        .all;
    let gzip_url = match (run.archive_state, &run.archive_key) {
        (ArchiveState::Uploaded, Some(key)) => Some(state.storage.get_url(key).await?),
        _ => None,
    };
    Ok(RunStatus {
        run_id: run.id.0,
        status: run.state,
        ruby_version: run.ruby_version,
        created_at: run.created_at,
        completed_at: run.completed_at,
        stopped_at: run.stopped_at,
        tasks: counts,
        gzip_url,
        failed_by_error_type: tasks::get_failed_counts_by_error_type(&state.db, run.id).await?,
        archive: ArchiveStatus {
            state: run.archive_state,
            error: run.archive_error,
            attempts: u32::try_from(run.archive_attempts).unwrap_or_default(),
            retry_at: run.archive_retry_at,
        },
    })
}
