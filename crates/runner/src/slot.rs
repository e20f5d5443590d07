//! A worker slot: pinned to one CPU, it claims tasks and runs them one after another until
//! the orchestrator says `done`.

use std::sync::Arc;
use std::time::Duration;

use protocol::{ClaimRequest, ClaimResponse};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::docker::DockerClient;
use crate::metadata::HostIdentity;
use crate::orchestrator::{OrchestratorClient, with_jitter};
use crate::ruby_bench::RubyBenchSource;
use crate::settings::RunnerSettings;
use crate::task::{TaskOutcome, run_task};

/// What all slots of a runner share.
pub struct RunnerContext {
    /// The runner's settings.
    pub settings: RunnerSettings,
    /// The orchestrator's API.
    pub api: OrchestratorClient,
    /// The Docker engine.
    pub docker: DockerClient,
    /// Plain HTTP client for presigned uploads.
    pub http: reqwest::Client,
    /// This host's identity and placement.
    pub identity: HostIdentity,
    /// Cancelled on SIGTERM or SIGINT.
    pub shutdown: CancellationToken,
    source: OnceCell<Arc<RubyBenchSource>>,
}

impl RunnerContext {
    /// Shared state for the slots of one runner.
    pub fn new(
        settings: RunnerSettings,
        docker: DockerClient,
        identity: HostIdentity,
        shutdown: CancellationToken,
    ) -> Self {
        let api = OrchestratorClient::new(
            &settings.orchestrator_url,
            &settings.api_key,
            settings.claim_retry(),
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .expect("the HTTP client builds");
        Self {
            settings,
            api,
            docker,
            http,
            identity,
            shutdown,
            source: OnceCell::new(),
        }
    }

    /// ruby-bench, prepared once per host (a failed fetch is tried again by the next task).
    pub async fn ruby_bench(&self) -> anyhow::Result<Arc<RubyBenchSource>> {
        self.source
            .get_or_try_init(|| async {
                let settings = self.settings.clone();
                let source = tokio::task::spawn_blocking(move || match &settings.ruby_bench_dir {
                    Some(dir) => RubyBenchSource::from_dir(dir),
                    None => RubyBenchSource::fetch(
                        &settings.ruby_bench_git_url,
                        &settings.ruby_bench_commit,
                        &settings.cache_dir,
                    ),
                })
                .await??;
                Ok(Arc::new(source))
            })
            .await
            .cloned()
    }
}

/// How a slot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotExit {
    /// The orchestrator has no more tasks for this instance type.
    Done,
    /// A task failed in debug mode: the host must stay up for inspection.
    HoldForDebug,
    /// The runner is shutting down.
    Interrupted,
}

/// One worker slot.
#[derive(Clone)]
pub struct Slot {
    /// Shared runner state.
    pub ctx: Arc<RunnerContext>,
    /// This slot's runner id.
    pub runner_id: String,
    /// The CPU this slot's benchmark containers are pinned to.
    pub cpu: u32,
}

impl Slot {
    /// Claims and runs tasks until `done`, a debug hold or shutdown.
    pub async fn run(self) -> anyhow::Result<SlotExit> {
        let request = ClaimRequest {
            provider: self.ctx.settings.provider,
            instance_type: self.ctx.settings.instance_type.clone(),
            runner_id: self.runner_id.clone(),
        };
        loop {
            let response = tokio::select! {
                response = self.ctx.api.claim(&request) => response?,
                () = self.ctx.shutdown.cancelled() => return Ok(SlotExit::Interrupted),
            };
            match response {
                ClaimResponse::Done => {
                    tracing::info!("{}: no more tasks", self.runner_id);
                    return Ok(SlotExit::Done);
                }
                ClaimResponse::Wait {
                    retry_after_seconds,
                } => {
                    let pause = with_jitter(Duration::from_secs(retry_after_seconds.max(1)));
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = self.ctx.shutdown.cancelled() => return Ok(SlotExit::Interrupted),
                    }
                }
                ClaimResponse::Assigned {
                    task,
                    presigned_urls,
                } => match run_task(&self, task, presigned_urls).await {
                    TaskOutcome::Completed
                    | TaskOutcome::Lost
                    | TaskOutcome::Failed { hold: false } => {}
                    TaskOutcome::Failed { hold: true } => {
                        tracing::warn!(
                            "{}: debug mode: keeping the host up after the failure",
                            self.runner_id
                        );
                        return Ok(SlotExit::HoldForDebug);
                    }
                    TaskOutcome::Interrupted => return Ok(SlotExit::Interrupted),
                },
            }
        }
    }
}
