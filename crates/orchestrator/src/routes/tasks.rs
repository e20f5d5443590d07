//! `POST /tasks/{id}/heartbeat`, `/complete`, `/fail`, `/upload-urls` and `/release`: the runner
//! holding a task reports on it. The decisions (check order, idempotency, the 409s) are in [`services::tasks`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use protocol::{
    CompleteRequest, FailRequest, HeartbeatRequest, PresignedUrls, ReleaseRequest,
    UploadUrlsRequest,
};

use crate::AppState;
use crate::error::AppResult;
use crate::extract::{JsonBody, TaskIdParam};
use crate::services;

/// Records the holder's progress; `finished` and `error` are recorded but change nothing.
pub async fn record_heartbeat(
    State(state): State<AppState>,
    id: TaskIdParam,
    JsonBody(heartbeat): JsonBody<HeartbeatRequest>,
) -> AppResult<StatusCode> {
    services::tasks::record_heartbeat(&state, id.task_id()?, &heartbeat).await?;
    Ok(StatusCode::OK)
}

/// Marks the holder's task completed with its uploaded result.
pub async fn complete_task(
    State(state): State<AppState>,
    id: TaskIdParam,
    JsonBody(request): JsonBody<CompleteRequest>,
) -> AppResult<StatusCode> {
    services::tasks::complete_task(&state, id.task_id()?, &request).await?;
    Ok(StatusCode::OK)
}

/// Marks the holder's task failed; failed tasks are never retried.
pub async fn fail_task(
    State(state): State<AppState>,
    id: TaskIdParam,
    JsonBody(request): JsonBody<FailRequest>,
) -> AppResult<StatusCode> {
    services::tasks::fail_task(&state, id.task_id()?, &request).await?;
    Ok(StatusCode::OK)
}

/// Signs fresh upload URLs of the holder's task.
pub async fn get_upload_urls(
    State(state): State<AppState>,
    id: TaskIdParam,
    JsonBody(request): JsonBody<UploadUrlsRequest>,
) -> AppResult<Json<PresignedUrls>> {
    let urls = services::tasks::get_upload_urls(&state, id.task_id()?, &request).await?;
    Ok(Json(urls))
}

/// Gives the holder's task back to pending: its host could not prepare it.
pub async fn release_task(
    State(state): State<AppState>,
    id: TaskIdParam,
    JsonBody(request): JsonBody<ReleaseRequest>,
) -> AppResult<StatusCode> {
    services::tasks::release_task(&state, id.task_id()?, &request).await?;
    Ok(StatusCode::OK)
}
