//! Handlers, one module per resource; `crate::router` registers them.

pub mod claim;
pub mod health;
pub mod openapi;
pub mod run;
pub mod tasks;

use axum::http::{Method, Uri};

use crate::error::{AppError, method_not_allowed, not_found};

/// Every unknown path answers a JSON 404 like the rest of the API.
pub async fn route_not_found(method: Method, uri: Uri) -> AppError {
    not_found(format!("no endpoint {method} {}", uri.path()))
}

/// A known path with the wrong method answers a JSON 405.
pub async fn wrong_method(method: Method, uri: Uri) -> AppError {
    method_not_allowed(format!("{} does not accept {method}", uri.path()))
}
