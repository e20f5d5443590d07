//! The reference claims of the claims benchmark, served beside `POST /tasks/claim` behind the
//! same authentication, request parsing and presigning: `FOR UPDATE SKIP LOCKED` as one writes
//! it first (the latest run looked up, then the task taken), and the same in one statement.

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use orchestrator::AppState;
use orchestrator::db::runs;
use protocol::{
    ClaimRequest, ClaimResponse, ClaimedTask, PresignedUrls, RubyBenchSelection, layout,
};

/// `POST /reference/claim` and `POST /reference/claim-in-one`, behind the runner key.
pub fn routes(state: &AppState) -> axum::Router {
    axum::Router::new()
        .route("/reference/claim", post(reference_claim))
        .route("/reference/claim-in-one", post(reference_claim_in_one))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            orchestrator::auth::require_runner_key,
        ))
        .with_state(state.clone())
}

/// The reference claim, as one writes it first: the same request and presigning as
/// `POST /tasks/claim`, the latest run looked up, then the task taken with one
/// `FOR UPDATE SKIP LOCKED` statement.
async fn reference_claim(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<ClaimResponse>, String> {
    let request = ClaimRequest::from_json(&body).map_err(|e| e.message().to_owned())?;
    let run = runs::get_latest_run(&state.db)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no run")?;
    let claimed: Option<(i64, i32)> = sqlx::query_as(
        "UPDATE tasks SET state = 'claimed', runner_id = $4, lock_version = lock_version + 1, \
             claimed_at = now(), last_heartbeat_at = now() \
         WHERE id = (SELECT id FROM tasks \
             WHERE run_id = $1 AND provider = $2 AND instance_type = $3 AND state = 'pending' \
             ORDER BY run, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, run",
    )
    .bind(run.id)
    .bind(request.provider.as_str())
    .bind(&request.instance_type)
    .bind(&request.runner_id)
    .fetch_optional(&state.db)
    .await
    .map_err(|e| e.to_string())?;
    let Some((id, task_run)) = claimed else {
        return Ok(Json(ClaimResponse::Done));
    };
    reference_assigned(
        &state,
        request,
        id,
        task_run,
        run.id.0,
        run.ruby_version,
        run.ruby_bench.0,
        run.debug_mode,
    )
    .await
}

/// The reference claim in one round trip, as `POST /tasks/claim` is: the latest run's
/// lookup and settings folded into the `FOR UPDATE SKIP LOCKED` statement.
async fn reference_claim_in_one(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<ClaimResponse>, String> {
    let request = ClaimRequest::from_json(&body).map_err(|e| e.message().to_owned())?;
    type Claimed = (
        i64,
        i32,
        i64,
        String,
        sqlx::types::Json<RubyBenchSelection>,
        bool,
    );
    let claimed: Option<Claimed> = sqlx::query_as(
        "WITH latest AS MATERIALIZED ( \
             SELECT id, ruby_version, ruby_bench, debug_mode FROM runs \
             WHERE id = (SELECT id FROM runs ORDER BY seq DESC LIMIT 1) \
                 AND state = 'running' AND stopped_at IS NULL \
         ), claimed AS ( \
             UPDATE tasks SET state = 'claimed', runner_id = $3, \
                 lock_version = lock_version + 1, claimed_at = now(), last_heartbeat_at = now() \
             WHERE id = (SELECT id FROM tasks \
                 WHERE run_id = (SELECT id FROM latest) AND provider = $1 \
                     AND instance_type = $2 AND state = 'pending' \
                 ORDER BY run, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, run, run_id \
         ) \
         SELECT claimed.id, claimed.run, latest.id, latest.ruby_version, latest.ruby_bench, \
             latest.debug_mode \
         FROM claimed JOIN latest ON latest.id = claimed.run_id",
    )
    .bind(request.provider.as_str())
    .bind(&request.instance_type)
    .bind(&request.runner_id)
    .fetch_optional(&state.db)
    .await
    .map_err(|e| e.to_string())?;
    let Some((id, task_run, run_id, ruby_version, ruby_bench, debug_mode)) = claimed else {
        return Ok(Json(ClaimResponse::Done));
    };
    reference_assigned(
        &state,
        request,
        id,
        task_run,
        run_id,
        ruby_version,
        ruby_bench.0,
        debug_mode,
    )
    .await
}

/// The `assigned` answer of a reference claim, with its URLs signed as `POST /tasks/claim`
/// signs them.
#[allow(clippy::too_many_arguments)]
async fn reference_assigned(
    state: &AppState,
    request: ClaimRequest,
    id: i64,
    task_run: i32,
    run_id: i64,
    ruby_version: String,
    ruby_bench: RubyBenchSelection,
    debug_mode: bool,
) -> Result<Json<ClaimResponse>, String> {
    let presigned_urls = PresignedUrls {
        result: state
            .storage
            .put_url(&layout::task_result_key(run_id, id))
            .await
            .map_err(|e| e.to_string())?,
        error: state
            .storage
            .put_url(&layout::task_error_key(run_id, id))
            .await
            .map_err(|e| e.to_string())?,
    };
    Ok(Json(ClaimResponse::Assigned {
        task: ClaimedTask {
            id,
            run_id,
            provider: request.provider,
            instance_type: request.instance_type,
            run: u32::try_from(task_run).unwrap_or_default(),
            ruby_version,
            ruby_bench,
            debug_mode,
        },
        presigned_urls,
    }))
}
