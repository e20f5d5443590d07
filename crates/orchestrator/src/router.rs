//! Every route of the orchestrator, in one place.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};

use crate::AppState;
use crate::auth::require_api_key;
use crate::extract::MAX_BODY_BYTES;
use crate::routes::{claim, health, route_not_found, run, tasks, wrong_method};

/// The orchestrator's HTTP app: the API behind bearer authentication, and `GET /health`.
pub fn create_app(state: AppState) -> Router {
    let api = Router::new()
        .route("/run/start", post(run::start_run))
        .route("/run", get(run::get_run))
        .route("/run/stop", post(run::stop_run))
        .route("/tasks/claim", post(claim::claim_task))
        .route("/tasks/{id}/heartbeat", post(tasks::record_heartbeat))
        .route("/tasks/{id}/complete", post(tasks::complete_task))
        .route("/tasks/{id}/fail", post(tasks::fail_task))
        // A route layer runs before the handler's extractors, so authentication (401) is
        // checked before the body (400, 413).
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_api_key,
        ));
    Router::new()
        .merge(api)
        .route("/health", get(health::get_health))
        .fallback(route_not_found)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
