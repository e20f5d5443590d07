//! `GET /openapi.json`: the OpenAPI document of the API, hand-written and checked in
//! (`crates/orchestrator/openapi.json`); the test suite keeps it in step with the router and
//! the protocol types. No authentication: it holds nothing secret.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as checked in.
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

/// Serves [`OPENAPI_JSON`].
pub async fn get_openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
