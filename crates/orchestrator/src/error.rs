//! The one error type at the HTTP edge.
//!
//! Policy (after crates.io's `util/errors.rs`): handlers return [`AppResult`]. Problems the
//! client can fix are made with the named constructors ([`bad_request`], [`not_found`], ...),
//! each with a message that says what was wrong and how to fix it, without a trailing period.
//! Everything else is an `anyhow::Error` (database, S3 signing), which `?` turns into a 500
//! whose details go to the log, not to the client. Every answer carries the JSON body
//! `{"error": "..."}` of [`protocol::ErrorBody`].

use std::fmt;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::{ErrorBody, ValidationError};

/// The result of every handler.
pub type AppResult<T> = Result<T, AppError>;

/// An error answered with a status code and a JSON `{"error": "..."}` body.
pub struct AppError {
    status: StatusCode,
    message: String,
    /// The cause of a 500, logged when the response is made.
    source: Option<anyhow::Error>,
}

impl AppError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            source: None,
        }
    }

    /// The status code this error is answered with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message of the JSON body.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// 400: the request body (or what it names) is wrong.
pub fn bad_request(message: impl Into<String>) -> AppError {
    AppError::new(StatusCode::BAD_REQUEST, message)
}

/// 401: the `Authorization` header is missing or wrong.
pub fn unauthorized(message: impl Into<String>) -> AppError {
    AppError::new(StatusCode::UNAUTHORIZED, message)
}

/// 403: the key is known but of the other kind (see `crate::auth`).
pub fn forbidden(message: impl Into<String>) -> AppError {
    AppError::new(StatusCode::FORBIDDEN, message)
}

/// 404: the task, run or route does not exist.
pub fn not_found(message: impl Into<String>) -> AppError {
    AppError::new(StatusCode::NOT_FOUND, message)
}

/// The 404 of endpoints that need a run when none was ever started.
pub fn no_run_yet() -> AppError {
    not_found("no run has been started: POST /run/start first")
}

/// 405: the route exists for other methods.
pub fn method_not_allowed(message: impl Into<String>) -> AppError {
    AppError::new(StatusCode::METHOD_NOT_ALLOWED, message)
}

/// 409: the request is valid but the state of the run or task does not allow it.
pub fn conflict(message: impl Into<String>) -> AppError {
    AppError::new(StatusCode::CONFLICT, message)
}

/// 413: the request body is larger than the limit.
pub fn payload_too_large(message: impl Into<String>) -> AppError {
    AppError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
}

/// 503: a dependency (the database) is not answering.
pub fn service_unavailable(message: impl Into<String>) -> AppError {
    AppError::new(StatusCode::SERVICE_UNAVAILABLE, message)
}

/// 500 for an unexpected failure; the cause is logged, the client gets a generic message.
pub fn internal(source: anyhow::Error) -> AppError {
    AppError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: "internal server error: the orchestrator logged the cause".to_owned(),
        source: Some(source),
    }
}

impl From<anyhow::Error> for AppError {
    fn from(source: anyhow::Error) -> Self {
        internal(source)
    }
}

impl From<sqlx::Error> for AppError {
    fn from(source: sqlx::Error) -> Self {
        internal(anyhow::Error::new(source).context("database query failed"))
    }
}

impl From<ValidationError> for AppError {
    fn from(error: ValidationError) -> Self {
        bad_request(error.message())
    }
}

impl fmt::Debug for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppError")
            .field("status", &self.status)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Some(source) = &self.source {
            tracing::error!(error = ?source, "request failed");
        }
        let mut response = (self.status, Json(ErrorBody::new(self.message))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750: a 401 names the scheme the client should use.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
