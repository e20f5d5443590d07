//! The holder of a task reports on it: heartbeats, completion and failure.
//!
//! Check order (docs/decisions.md): 401 (middleware), 400 (the body), 404 (the task), 409 (who
//! holds it). The issued S3 key can only be checked once the task is found, so a wrong key is a
//! 400 after the 404 and before the 409. Completion and failure are idempotent for the holder: a
//! retried call finds the task already in the state it asked for, by its own hand, and succeeds.

use protocol::{
    CompleteRequest, ErrorType, FailRequest, FailedBy, HeartbeatRequest, PresignedUrls,
    ReleaseRequest, TaskStatus, UploadUrlsRequest, layout,
};

use crate::AppState;
use crate::db::TaskId;
use crate::db::tasks::{self, TaskModel};
use crate::error::{AppError, AppResult, bad_request, conflict, not_found};
use crate::jobs::archive;

/// Records the holder's progress; `finished` and `error` are recorded but change nothing.
pub async fn record_heartbeat(
    state: &AppState,
    id: TaskId,
    heartbeat: &HeartbeatRequest,
) -> AppResult<()> {
    if tasks::update_task_heartbeat(&state.db, id, heartbeat).await? {
        return Ok(());
    }
    let task = get_task(state, id).await?;
    Err(not_held(&task, &heartbeat.runner_id))
}

/// Marks the holder's task completed with its uploaded result.
pub async fn complete_task(
    state: &AppState,
    id: TaskId,
    request: &CompleteRequest,
) -> AppResult<()> {
    let task = get_task(state, id).await?;
    let issued = layout::task_result_key(task.run_id.0, task.id.0);
    if request.s3_result_key != issued {
        return Err(bad_request(format!(
            "\"s3_result_key\" must be the key issued for task {id}, {issued:?}, got {:?}",
            request.s3_result_key
        )));
    }
    if tasks::update_task_completed(&state.db, id, &request.runner_id, &issued).await? {
        tracing::info!(task_id = %id, runner_id = request.runner_id, "task completed");
        archive::spawn_build_if_finished(state, task.run_id);
        return Ok(());
    }
    // Nothing changed: either this is a retry of a call that already succeeded, or the runner
    // does not hold the task. Read the task again, since it may have changed meanwhile.
    let task = get_task(state, id).await?;
    if task.state == TaskStatus::Completed && holds(&task, &request.runner_id) {
        return Ok(());
    }
    Err(not_held(&task, &request.runner_id))
}

/// Marks the holder's task failed; failed tasks are never retried.
pub async fn fail_task(state: &AppState, id: TaskId, request: &FailRequest) -> AppResult<()> {
    let task = get_task(state, id).await?;
    if let Some(key) = &request.s3_error_key {
        let issued = layout::task_error_key(task.run_id.0, task.id.0);
        if *key != issued {
            return Err(bad_request(format!(
                "\"s3_error_key\" must be the key issued for task {id}, {issued:?}, got {key:?}"
            )));
        }
    }
    if tasks::update_task_failed(&state.db, id, request).await? {
        tracing::info!(
            task_id = %id,
            runner_id = request.runner_id,
            error_type = request.error_type,
            "task failed"
        );
        archive::spawn_build_if_finished(state, task.run_id);
        return Ok(());
    }
    let task = get_task(state, id).await?;
    let failed_by_runner = task.failed_by.as_deref() == Some(FailedBy::Runner.as_str());
    if task.state == TaskStatus::Failed && failed_by_runner && holds(&task, &request.runner_id) {
        return Ok(());
    }
    Err(not_held(&task, &request.runner_id))
}

/// Fresh upload URLs of the holder's task: the claim's may have expired, since URLs signed with
/// an instance role's credentials die with those credentials, whatever `PRESIGN_TTL_SECS`
/// says. Only the holder of a claimed task gets them.
pub async fn get_upload_urls(
    state: &AppState,
    id: TaskId,
    request: &UploadUrlsRequest,
) -> AppResult<PresignedUrls> {
    let task = get_task(state, id).await?;
    if task.state != TaskStatus::Claimed || !holds(&task, &request.runner_id) {
        return Err(not_held(&task, &request.runner_id));
    }
    Ok(presigned_urls(state, &task).await?)
}

/// The upload URLs of a task, signed now.
pub async fn presigned_urls(state: &AppState, task: &TaskModel) -> anyhow::Result<PresignedUrls> {
    Ok(PresignedUrls {
        result: state
            .storage
            .put_url(&layout::task_result_key(task.run_id.0, task.id.0))
            .await?,
        error: state
            .storage
            .put_url(&layout::task_error_key(task.run_id.0, task.id.0))
            .await?,
    })
}

/// Gives the holder's task back: its host could not prepare it (the benchmark never started),
/// so it is pending again for another runner of its type, with the reason kept for the
/// dashboard and a later `no_runner` message.
pub async fn release_task(state: &AppState, id: TaskId, request: &ReleaseRequest) -> AppResult<()> {
    let message = format!("{}: {}", request.error_type, request.error_message);
    let Some(task) =
        tasks::update_task_released(&state.db, id, &request.runner_id, &message).await?
    else {
        let task = get_task(state, id).await?;
        return Err(not_held(&task, &request.runner_id));
    };
    // The task is pending below where claims of its type start scanning now.
    state
        .claims
        .forget_start(task.provider, &task.instance_type);
    tracing::warn!(
        task_id = %id,
        runner_id = request.runner_id,
        error_type = request.error_type,
        releases = task.release_count,
        "task given back: its runner's host could not prepare it"
    );
    Ok(())
}

async fn get_task(state: &AppState, id: TaskId) -> AppResult<TaskModel> {
    tasks::get_task(&state.db, id)
        .await?
        .ok_or_else(|| not_found(format!("task {id} not found")))
}

fn holds(task: &TaskModel, runner_id: &str) -> bool {
    task.runner_id.as_deref() == Some(runner_id)
}

/// The 409 for a runner that does not (or no longer) hold the task, saying why, so that the
/// runner knows to stop working on it.
fn not_held(task: &TaskModel, runner_id: &str) -> AppError {
    let id = task.id;
    if task.state == TaskStatus::Pending {
        return conflict(format!(
            "task {id} is not claimed by runner {runner_id:?}: claim a task with POST /tasks/claim"
        ));
    }
    if !holds(task, runner_id) {
        return conflict(format!(
            "task {id} is claimed by another runner, not {runner_id:?}"
        ));
    }
    let by_orchestrator = task.failed_by.as_deref() == Some(FailedBy::Orchestrator.as_str());
    match task.state {
        TaskStatus::Completed => conflict(format!("task {id} is already completed")),
        TaskStatus::Failed if by_orchestrator => match task.error_type.as_deref().map(str::parse) {
            Some(Ok(ErrorType::RunStopped)) => conflict(format!(
                "task {id} was failed because the run was stopped early: stop working on it"
            )),
            Some(Ok(ErrorType::HeartbeatTimeout)) => conflict(format!(
                "task {id} was failed because its heartbeats stopped arriving: stop working on it"
            )),
            _ => conflict(format!(
                "task {id} was failed by the orchestrator: stop working on it"
            )),
        },
        TaskStatus::Failed => conflict(format!("task {id} has already failed")),
        // The task changed between the update and the read; the runner may try again.
        TaskStatus::Claimed | TaskStatus::Pending => {
            conflict(format!("task {id} changed during the request: try again"))
        }
    }
}
