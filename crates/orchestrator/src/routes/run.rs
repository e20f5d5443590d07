//! `POST /run/start`, `GET /run` and `POST /run/stop`; the decisions are in
//! [`services::runs`] and [`lifecycle`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use protocol::{RunConfig, RunStatus, StartRunResponse, StopRunResponse};

use crate::AppState;
use crate::error::AppResult;
use crate::extract::JsonBody;
use crate::{lifecycle, services};

/// Creates a run and its tasks in the seed's order, in one transaction.
pub async fn start_run(
    State(state): State<AppState>,
    JsonBody(config): JsonBody<RunConfig>,
) -> AppResult<(StatusCode, Json<StartRunResponse>)> {
    let started = services::runs::start_run(&state, &config).await?;
    Ok((StatusCode::CREATED, Json(started)))
}

/// The latest run with its task counts; `gzip_url` is presigned afresh on every call.
pub async fn get_run(State(state): State<AppState>) -> AppResult<Json<RunStatus>> {
    services::runs::get_run(&state).await.map(Json)
}

/// Ends the running run early; see [`lifecycle::stop_run`]. Any request body is ignored.
pub async fn stop_run(State(state): State<AppState>) -> AppResult<Json<StopRunResponse>> {
    lifecycle::stop_run(&state).await.map(Json)
}
