//! `GET /health`: for load balancers and the local stack; no authentication.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{AppResult, service_unavailable};

/// Answers 200 when the database answers, else 503.
pub async fn get_health(State(state): State<AppState>) -> AppResult<Json<Value>> {
    sqlx::query("SELECT 1")
        .execute(&state.db)
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "health check failed");
            service_unavailable("the database is not answering")
        })?;
    Ok(Json(json!({"status": "ok"})))
}
