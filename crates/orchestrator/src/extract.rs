//! Extractors that never turn bad input into a 500, and that keep the check order of
//! docs/decisions.md: the body (400) is judged before the task id (404).

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use protocol::{
    ClaimRequest, CompleteRequest, FailRequest, HeartbeatRequest, ReleaseRequest, RunConfig,
    UploadUrlsRequest, ValidationError,
};

use crate::db::TaskId;
use crate::error::{AppError, AppResult, bad_request, not_found, payload_too_large};

/// The largest request body accepted; run configs and runner messages are far smaller.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A request body type that validates itself, naming the field in every message.
pub trait RequestBody: Sized {
    /// Parses and validates the body.
    fn parse(bytes: &[u8]) -> Result<Self, ValidationError>;
}

macro_rules! request_bodies {
    ($($name:ident),+) => {
        $(impl RequestBody for $name {
            fn parse(bytes: &[u8]) -> Result<Self, ValidationError> {
                $name::from_json(bytes)
            }
        })+
    };
}

request_bodies!(
    RunConfig,
    ClaimRequest,
    HeartbeatRequest,
    CompleteRequest,
    FailRequest,
    UploadUrlsRequest,
    ReleaseRequest
);

/// A validated JSON request body. `Content-Type` is not checked, so `curl -d` from the Fish
/// scripts works without `-H 'Content-Type: application/json'`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: RequestBody> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    payload_too_large(format!(
                        "request body is larger than the limit of {MAX_BODY_BYTES} bytes"
                    ))
                } else {
                    bad_request(format!(
                        "failed to read the request body: {}",
                        rejection.body_text()
                    ))
                }
            })?;
        Ok(Self(T::parse(&bytes)?))
    }
}

/// The `{id}` of a `/tasks/{id}/...` path, as sent. It is parsed by [`TaskIdParam::task_id`]
/// in the handler, after the body, so that a bad body is a 400 whatever the id.
#[derive(Debug)]
pub struct TaskIdParam(String);

impl<S: Send + Sync> FromRequestParts<S> for TaskIdParam {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // The only failure is a percent-encoded id that is not UTF-8, which names no task;
        // keep it as sent for the message.
        let raw = match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => id,
            Err(_) => parts
                .uri
                .path()
                .split('/')
                .nth(2)
                .unwrap_or_default()
                .to_owned(),
        };
        Ok(Self(raw))
    }
}

impl TaskIdParam {
    /// The task id; a 404 when it is not a positive integer, since no such task exists.
    pub fn task_id(&self) -> AppResult<TaskId> {
        self.0
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0 && self.0.bytes().all(|b| b.is_ascii_digit()))
            .map(TaskId)
            .ok_or_else(|| {
                not_found(format!(
                    "task {:?} not found: task ids are positive integers",
                    self.0
                ))
            })
    }
}
