//! Changes of a run's life that more than one caller makes: ending a run early is asked for by
//! `POST /run/stop` and by the dashboard's button.

use protocol::{ArchiveState, RunState, StopRunResponse};

use crate::AppState;
use crate::db::{runs, tasks};
use crate::error::{AppResult, no_run_yet, not_found};
use crate::jobs::archive;

/// Ends the running run early: pending tasks are deleted, claimed tasks are failed with
/// `error_type: run_stopped` (their runners learn it from the 409 of their next heartbeat),
/// `stopped_at` is set, and the archive is built from what finished, at once (also when the
/// run had finished and its archive was waiting out the backoff of a failed build). On a run
/// stopped already whose archive build failed, the build is tried again now. A 404 when no
/// run is running, or the running one was stopped already and its archive is being built.
pub async fn stop_run(state: &AppState) -> AppResult<StopRunResponse> {
    let mut tx = state.db.begin().await?;
    // The run's row lock orders this stop after a concurrent one.
    let Some(run) = runs::get_running_run_for_update(&mut *tx).await? else {
        return Err(match runs::get_latest_run(&mut *tx).await? {
            Some(latest) if latest.state == RunState::Complete => not_found(format!(
                "no run is running: run {} is complete; start one with POST /run/start",
                latest.id
            )),
            _ => no_run_yet(),
        });
    };
    if run.stopped_at.is_some() && run.archive_state == ArchiveState::Failed {
        // Stopped already, and its archive failed: ending it again asks for the archive now
        // rather than after the backoff.
        runs::update_run_archive_retry_now(&mut *tx, run.id).await?;
        tx.commit().await?;
        tracing::info!(run_id = %run.id, "stopped run: building its failed archive again now");
        archive::spawn_build_if_finished(state, run.id);
        return Ok(StopRunResponse {
            run_id: run.id.0,
            tasks_deleted: 0,
            tasks_failed: 0,
        });
    }
    if run.stopped_at.is_some() {
        return Err(not_found(format!(
            "no run is running: run {} was stopped already and its archive is being built",
            run.id
        )));
    }
    runs::update_run_stopped(&mut *tx, run.id).await?;
    // Pending tasks go first: a claim that wins one of them before the delete is caught by the
    // update of claimed tasks, which runs after it with a newer snapshot.
    let deleted = tasks::delete_pending_tasks(&mut *tx, run.id).await?;
    let failed = tasks::update_claimed_tasks_stopped(
        &mut *tx,
        run.id,
        "the run was ended early (POST /run/stop) while the task was running",
    )
    .await?;
    tx.commit().await?;
    tracing::info!(run_id = %run.id, deleted, failed, "run stopped early");
    archive::spawn_build_if_finished(state, run.id);
    Ok(StopRunResponse {
        run_id: run.id.0,
        tasks_deleted: deleted,
        tasks_failed: failed,
    })
}
