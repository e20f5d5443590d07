//! Heartbeats: every interval and whenever the progress changes, until the task ends or the
//! orchestrator answers that it is no longer this runner's. A heartbeat that does not get
//! through (the orchestrator or its database is away) is tried again soon, with a backoff up
//! to the interval, so that the orchestrator hears the runner as soon as it is back; the
//! benchmark carries on meanwhile.

use std::time::Duration;

use protocol::HeartbeatRequest;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Progress, TaskContext};
use crate::orchestrator::{ApiError, with_jitter};

/// The pause before the first retry of a heartbeat that did not get through; each further
/// one doubles it, up to the heartbeat interval.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Sends heartbeats every interval and whenever the progress changes; cancels `lost`
/// when the orchestrator answers that the task is no longer this runner's.
pub(super) async fn heartbeat_loop(
    context: TaskContext,
    task_id: i64,
    mut progress: watch::Receiver<Progress>,
    lost: CancellationToken,
) {
    let interval = context.shared.settings.heartbeat_interval();
    let mut next = Duration::ZERO;
    let mut retry = FIRST_RETRY;
    loop {
        tokio::select! {
            () = tokio::time::sleep(next) => {}
            changed = progress.changed() => if changed.is_err() { return },
        }
        let current = progress.borrow_and_update().clone();
        let request = HeartbeatRequest {
            runner_id: context.runner_id.clone(),
            status: current.phase,
            current_benchmark: current.benchmark,
            progress_pct: current.pct,
            message: Some(current.message),
        };
        match context.shared.api.heartbeat(task_id, &request).await {
            Ok(()) => {
                next = interval;
                retry = FIRST_RETRY;
            }
            Err(ApiError::Conflict(message)) => {
                tracing::warn!("{}: heartbeat refused: {message}", context.runner_id);
                lost.cancel();
                return;
            }
            Err(ApiError::Refused { status, message })
                if status == reqwest::StatusCode::NOT_FOUND =>
            {
                tracing::warn!("{}: task {task_id} is gone: {message}", context.runner_id);
                lost.cancel();
                return;
            }
            // The orchestrator may be restarting: the benchmark carries on, and the next
            // heartbeat goes soon.
            Err(err) => {
                next = with_jitter(retry).min(interval);
                tracing::warn!(
                    "{}: heartbeat failed: {err}; trying again in {next:?}",
                    context.runner_id
                );
                retry = (retry * 2).min(interval);
            }
        }
    }
}
