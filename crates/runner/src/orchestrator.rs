//! The orchestrator's API as the runner uses it, with the retry policy of the seed: keep
//! trying for up to `CLAIM_RETRY_SECS` while the orchestrator cannot be reached or answers
//! 5xx. "No run yet" (404 on claim) is an answer, not an outage: the master script starts
//! the run while the runners' hosts are still being created, and the hosts of a slow cloud
//! can be up long before it. A runner waits for the run for as long as it gets that
//! answer; its host's TTL backstop bounds the wait.

use std::time::Duration;

use protocol::{
    ClaimRequest, ClaimResponse, CompleteRequest, ErrorBody, FailRequest, HeartbeatRequest,
    PresignedUrls, ReleaseRequest, UploadUrlsRequest,
};
use rand::Rng;
use reqwest::StatusCode;
use tokio::time::Instant;

/// Longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Timeout of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed call to the orchestrator.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The orchestrator answered 409: the task is no longer this runner's.
    #[error("the orchestrator says the task is no longer ours: {0}")]
    Conflict(String),
    /// The orchestrator answered another 4xx: retrying cannot help.
    #[error("the orchestrator refused the request ({status}): {message}")]
    Refused { status: StatusCode, message: String },
    /// The orchestrator could not be reached, or kept failing, for the whole retry window.
    #[error("the orchestrator was unreachable for {0:?}: {1}")]
    Unreachable(Duration, String),
}

/// Client of the orchestrator's task API.
#[derive(Clone)]
pub struct OrchestratorClient {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    retry_window: Duration,
}

/// What one attempt came to.
enum Attempt<T> {
    Done(T),
    /// Worth retrying (connection error, 5xx), with what went wrong.
    Retry(String),
    /// The orchestrator answered that there is no run yet: wait, with no time limit (the
    /// retry window starts again at the next failure to get an answer).
    NoRunYet(String),
    Fail(ApiError),
}

impl OrchestratorClient {
    /// A client for `base_url` that retries unreachable periods for up to `retry_window`.
    pub fn new(base_url: &str, api_key: &str, retry_window: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("the HTTP client builds");
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            retry_window,
        }
    }

    /// Claims a task, retrying while the orchestrator is unreachable or has no run yet.
    pub async fn claim(&self, request: &ClaimRequest) -> Result<ClaimResponse, ApiError> {
        self.with_retries(|| async {
            match self.post("/tasks/claim", request).await {
                Err(err) => Attempt::Retry(err),
                Ok((status, body)) if status.is_success() => match serde_json::from_slice(&body) {
                    Ok(response) => Attempt::Done(response),
                    Err(err) => Attempt::Retry(format!("unreadable claim answer: {err}")),
                },
                // 404 means no run was ever started: the master script may not have sent it yet.
                Ok((StatusCode::NOT_FOUND, body)) => {
                    Attempt::NoRunYet(format!("no run yet: {}", error_message(&body)))
                }
                Ok((status, body)) => classify(status, &body),
            }
        })
        .await
    }

    /// Sends one heartbeat, without retries: the next one follows soon.
    pub async fn heartbeat(
        &self,
        task_id: i64,
        request: &HeartbeatRequest,
    ) -> Result<(), ApiError> {
        match self
            .post(&format!("/tasks/{task_id}/heartbeat"), request)
            .await
        {
            Err(err) => Err(ApiError::Unreachable(Duration::ZERO, err)),
            Ok((status, _)) if status.is_success() => Ok(()),
            Ok((status, body)) => match classify::<()>(status, &body) {
                Attempt::Fail(err) => Err(err),
                _ => Err(ApiError::Unreachable(
                    Duration::ZERO,
                    format!("{status}: {}", error_message(&body)),
                )),
            },
        }
    }

    /// Reports the task complete, retrying while the orchestrator is unreachable.
    pub async fn complete(&self, task_id: i64, request: &CompleteRequest) -> Result<(), ApiError> {
        self.send_with_retries(&format!("/tasks/{task_id}/complete"), request)
            .await
    }

    /// Reports the task failed, retrying while the orchestrator is unreachable.
    pub async fn fail(&self, task_id: i64, request: &FailRequest) -> Result<(), ApiError> {
        self.send_with_retries(&format!("/tasks/{task_id}/fail"), request)
            .await
    }

    /// Gives the task back (its host could not prepare it), retrying while the orchestrator
    /// is unreachable.
    pub async fn release(&self, task_id: i64, request: &ReleaseRequest) -> Result<(), ApiError> {
        self.send_with_retries(&format!("/tasks/{task_id}/release"), request)
            .await
    }

    /// Asks for fresh upload URLs of the task: once when `retry` is false (the claim's URLs
    /// are there to fall back on), else while the orchestrator is unreachable.
    pub async fn upload_urls(
        &self,
        task_id: i64,
        request: &UploadUrlsRequest,
        retry: bool,
    ) -> Result<PresignedUrls, ApiError> {
        let path = format!("/tasks/{task_id}/upload-urls");
        let attempt = || async {
            match self.post(&path, request).await {
                Err(err) => Attempt::Retry(err),
                Ok((status, body)) if status.is_success() => match serde_json::from_slice(&body) {
                    Ok(urls) => Attempt::Done(urls),
                    Err(err) => Attempt::Retry(format!("unreadable upload URLs: {err}")),
                },
                Ok((status, body)) => classify(status, &body),
            }
        };
        if retry {
            return self.with_retries(attempt).await;
        }
        match attempt().await {
            Attempt::Done(urls) => Ok(urls),
            Attempt::Fail(err) => Err(err),
            Attempt::Retry(problem) | Attempt::NoRunYet(problem) => {
                Err(ApiError::Unreachable(Duration::ZERO, problem))
            }
        }
    }

    async fn send_with_retries(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<(), ApiError> {
        self.with_retries(|| async {
            match self.post(path, body).await {
                Err(err) => Attempt::Retry(err),
                Ok((status, _)) if status.is_success() => Attempt::Done(()),
                Ok((status, body)) => classify(status, &body),
            }
        })
        .await
    }

    async fn post(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<(StatusCode, bytes::Bytes), String> {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(&self.api_key)
            .json(body)
            .send()
            .await
            .map_err(|err| format!("POST {path}: {err}"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|err| format!("POST {path}: {err}"))?;
        Ok((status, body))
    }

    async fn with_retries<T, F, Fut>(&self, mut attempt: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let mut started = Instant::now();
        let mut backoff = Duration::from_millis(500);
        loop {
            match attempt().await {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fail(err) => return Err(err),
                Attempt::NoRunYet(problem) => {
                    started = Instant::now();
                    tracing::info!("orchestrator: {problem}; asking again in {backoff:?}");
                    tokio::time::sleep(with_jitter(backoff)).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Attempt::Retry(problem) => {
                    let waited = started.elapsed();
                    if waited >= self.retry_window {
                        return Err(ApiError::Unreachable(waited, problem));
                    }
                    tracing::warn!("orchestrator: {problem}; retrying in {backoff:?}");
                    tokio::time::sleep(with_jitter(backoff).min(self.retry_window - waited)).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

fn classify<T>(status: StatusCode, body: &[u8]) -> Attempt<T> {
    let message = error_message(body);
    if status == StatusCode::CONFLICT {
        Attempt::Fail(ApiError::Conflict(message))
    } else if status.is_server_error() {
        Attempt::Retry(format!("{status}: {message}"))
    } else {
        Attempt::Fail(ApiError::Refused { status, message })
    }
}

fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorBody>(body)
        .map(|body| body.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).chars().take(200).collect())
}

/// `duration` scaled by a random factor in [0.5, 1.5), so slots that failed together do
/// not retry together.
pub fn with_jitter(duration: Duration) -> Duration {
    duration.mul_f64(rand::rng().random_range(0.5..1.5))
}

#[cfg(test)]
mod tests {
    use protocol::{ClaimRequest, ClaimResponse, Provider};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::OrchestratorClient;

    /// A claim that gets "no run yet" for longer than the retry window keeps waiting: the
    /// window is for an orchestrator that does not answer.
    #[tokio::test]
    async fn no_run_yet_is_waited_out_beyond_the_retry_window() {
        let server = MockServer::start().await;
        // About 3 s of 404s (backoff 0.5 s, 1 s, 2 s, with jitter), then done.
        Mock::given(method("POST"))
            .and(path("/tasks/claim"))
            .respond_with(ResponseTemplate::new(404).set_body_raw(
                r#"{"error": "no run has been started"}"#,
                "application/json",
            ))
            .up_to_n_times(3)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/tasks/claim"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(r#"{"status": "done"}"#, "application/json"),
            )
            .with_priority(2)
            .mount(&server)
            .await;

        let client =
            OrchestratorClient::new(&server.uri(), "key", std::time::Duration::from_millis(300));
        let request = ClaimRequest {
            provider: Provider::Aws,
            instance_type: "c7i.large".to_owned(),
            runner_id: "test-1".to_owned(),
        };
        let answer = client.claim(&request).await.unwrap();
        assert!(matches!(answer, ClaimResponse::Done), "{answer:?}");
        assert_eq!(server.received_requests().await.unwrap().len(), 4);
    }
}
