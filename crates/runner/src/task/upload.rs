//! The PUT of a task archive to its presigned URL.

use std::time::Duration;

use bytes::Bytes;

use super::TaskContext;
use crate::orchestrator::with_jitter;

/// PUTs an archive to its presigned URL, retrying within the orchestrator retry window.
pub(super) async fn upload(context: &TaskContext, url: &str, body: Bytes) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + context.shared.settings.claim_retry();
    let mut backoff = Duration::from_secs(1);
    loop {
        let problem = match context.shared.http.put(url).body(body.clone()).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                // A refused signature will not get better by retrying.
                if status.is_client_error() {
                    return Err(format!(
                        "{status}: {}",
                        text.chars().take(300).collect::<String>()
                    ));
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
