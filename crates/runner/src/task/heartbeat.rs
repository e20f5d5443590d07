//! Heartbeats: every interval and whenever the progress changes, until the task ends or the
//! orchestrator answers that it is no longer this runner's.

use protocol::HeartbeatRequest;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Progress, TaskContext};
use crate::orchestrator::ApiError;

/// Sends heartbeats every interval and whenever the progress changes; cancels `lost`
/// when the orchestrator answers that the task is no longer this runner's.
pub(super) async fn heartbeat_loop(
    context: TaskContext,
    task_id: i64,
    mut progress: watch::Receiver<Progress>,
    lost: CancellationToken,
) {
    let mut ticker = tokio::time::interval(context.shared.settings.heartbeat_interval());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
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
            Ok(()) => {}
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
            // The orchestrator may be restarting: the benchmark carries on.
            Err(err) => tracing::warn!("{}: heartbeat failed: {err}", context.runner_id),
        }
    }
}
