//! `POST /tasks/claim`; the claim itself is [`services::claim`].

use axum::Json;
use axum::extract::State;
use protocol::{ClaimRequest, ClaimResponse};

use crate::AppState;
use crate::error::{AppResult, no_run_yet};
use crate::extract::JsonBody;
use crate::services::claim::{self, ClaimOutcome};

/// Hands the runner a pending task of its provider and instance type, or says `wait` or `done`.
pub async fn claim_task(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<ClaimRequest>,
) -> AppResult<Json<ClaimResponse>> {
    let response = match claim::claim_task(&state, &request).await? {
        ClaimOutcome::Assigned {
            task,
            presigned_urls,
        } => ClaimResponse::Assigned {
            task: *task,
            presigned_urls,
        },
        ClaimOutcome::Lost => ClaimResponse::Wait {
            retry_after_seconds: state.config.claim_retry_after_secs,
        },
        ClaimOutcome::Done => ClaimResponse::Done,
        ClaimOutcome::NoRun => return Err(no_run_yet()),
    };
    Ok(Json(response))
}
