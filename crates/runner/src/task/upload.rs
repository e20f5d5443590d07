//! The PUT of a task archive to a presigned URL. The URL is asked for afresh just before the
//! upload (the claim's may have expired: URLs signed with an instance role's credentials die
//! with them, whatever their lifetime says), and again when S3 refuses it with a 403.

use std::time::Duration;

use bytes::Bytes;
use protocol::{PresignedUrls, UploadUrlsRequest};
use reqwest::StatusCode;

use super::TaskContext;
use crate::orchestrator::with_jitter;

/// How many fresh URLs one upload asks for after S3 refused the one it had.
const MAX_REFRESHES: u32 = 3;

/// Which archive of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Archive {
    /// `result.tar.gz`.
    Result,
    /// `error.tar.gz`.
    Error,
}

impl Archive {
    fn url(self, urls: &PresignedUrls) -> &str {
        match self {
            Self::Result => &urls.result,
            Self::Error => &urls.error,
        }
    }
}

/// PUTs an archive of the task, retrying within the orchestrator retry window. `claimed` are
/// the URLs of the claim, used when fresh ones cannot be had at once.
pub(super) async fn upload(
    context: &TaskContext,
    task_id: i64,
    archive: Archive,
    claimed: &PresignedUrls,
    body: Bytes,
) -> Result<(), String> {
    let mut url = match fresh_url(context, task_id, archive, false).await {
        Ok(url) => url,
        Err(problem) => {
            tracing::warn!(
                "{}: no fresh upload URL ({problem}); using the claim's",
                context.runner_id
            );
            archive.url(claimed).to_owned()
        }
    };
    let mut refreshes = 0;
    let deadline = tokio::time::Instant::now() + context.shared.settings.claim_retry();
    let mut backoff = Duration::from_secs(1);
    loop {
        let problem = match context
            .shared
            .http
            .put(&url)
            .body(body.clone())
            .send()
            .await
        {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                let text: String = text.chars().take(300).collect();
                // An expired or refused signature: a fresh URL, asked for as long as the
                // orchestrator may take to answer (a few times: a URL can expire again while
                // S3 is away and the upload waits).
                if status == StatusCode::FORBIDDEN && refreshes < MAX_REFRESHES {
                    tracing::warn!(
                        "{}: S3 refused the upload URL ({status}); asking for a fresh one",
                        context.runner_id
                    );
                    url = fresh_url(context, task_id, archive, true).await?;
                    refreshes += 1;
                    continue;
                }
                // Any other refusal will not get better by retrying.
                if status.is_client_error() {
                    return Err(format!("{status}: {text}"));
                }
                format!("{status}")
            }
            Err(err) => err.to_string(),
        };
        if tokio::time::Instant::now() + backoff > deadline {
            return Err(problem);
        }
        tracing::warn!(
            "{}: upload failed ({problem}); retrying in {backoff:?}",
            context.runner_id
        );
        tokio::time::sleep(with_jitter(backoff)).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// A freshly signed URL for the archive, from `POST /tasks/{id}/upload-urls`.
async fn fresh_url(
    context: &TaskContext,
    task_id: i64,
    archive: Archive,
    retry: bool,
) -> Result<String, String> {
    let request = UploadUrlsRequest {
        runner_id: context.runner_id.clone(),
    };
    context
        .shared
        .api
        .upload_urls(task_id, &request, retry)
        .await
        .map(|urls| archive.url(&urls).to_owned())
        .map_err(|err| err.to_string())
}
