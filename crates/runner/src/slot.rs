//! A worker slot: pinned to one CPU, it claims tasks and runs them one after another until
//! the orchestrator says `done`.

use std::sync::Arc;
use std::time::Duration;

use protocol::{ClaimRequest, ClaimResponse};

use crate::context::RunnerContext;
use crate::orchestrator::with_jitter;
use crate::task::{TaskContext, TaskOutcome, run_task};

/// How a slot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotExit {
    /// The orchestrator has no more tasks for this instance type.
    Done,
    /// A task failed in debug mode: the host must stay up for inspection.
    HoldForDebug,
    /// The runner is shutting down.
    Interrupted,
    /// The host could not prepare a task (image pull, ruby-bench, Docker) after every retry:
    /// the task went back to pending, and this slot claims no more.
    NotPrepared,
}

/// One worker slot.
pub struct Slot {
    /// Who its tasks run as, and where.
    context: TaskContext,
}

impl Slot {
    /// A slot of the runner whose tasks run as `runner_id`, pinned to `cpu`.
    pub fn new(shared: Arc<RunnerContext>, runner_id: String, cpu: u32) -> Self {
        Self {
            context: TaskContext {
                shared,
                runner_id,
                cpu,
            },
        }
    }

    /// Claims and runs tasks until `done`, a debug hold or shutdown.
    pub async fn run(self) -> anyhow::Result<SlotExit> {
        let TaskContext {
            shared, runner_id, ..
        } = &self.context;
        let request = ClaimRequest {
            provider: shared.settings.provider,
            instance_type: shared.settings.instance_type.clone(),
            runner_id: runner_id.clone(),
        };
        loop {
            let response = tokio::select! {
                response = shared.api.claim(&request) => response?,
                () = shared.shutdown.cancelled() => return Ok(SlotExit::Interrupted),
            };
            match response {
                ClaimResponse::Done => {
                    tracing::info!("{runner_id}: no more tasks");
                    return Ok(SlotExit::Done);
                }
                ClaimResponse::Wait {
                    retry_after_seconds,
                } => {
                    let pause = with_jitter(Duration::from_secs(retry_after_seconds.max(1)));
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = shared.shutdown.cancelled() => return Ok(SlotExit::Interrupted),
                    }
                }
                ClaimResponse::Assigned {
                    task,
                    presigned_urls,
                } => match run_task(&self.context, task, presigned_urls).await {
                    TaskOutcome::Completed
                    | TaskOutcome::Lost
                    | TaskOutcome::Failed { hold: false } => {}
                    TaskOutcome::Failed { hold: true } => {
                        tracing::warn!(
                            "{runner_id}: debug mode: keeping the host up after the failure"
                        );
                        return Ok(SlotExit::HoldForDebug);
                    }
                    TaskOutcome::Interrupted => return Ok(SlotExit::Interrupted),
                    TaskOutcome::NotPrepared => {
                        tracing::error!(
                            "{runner_id}: this host cannot prepare tasks; the slot stops claiming"
                        );
                        return Ok(SlotExit::NotPrepared);
                    }
                },
            }
        }
    }
}
