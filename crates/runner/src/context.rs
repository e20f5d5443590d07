//! What every slot and task of one runner shares: settings, the orchestrator's API, Docker,
//! the HTTP client for uploads, the host's identity, the shutdown signal and ruby-bench.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::docker::DockerClient;
use crate::metadata::HostIdentity;
use crate::orchestrator::OrchestratorClient;
use crate::ruby_bench::RubyBenchSource;
use crate::settings::RunnerSettings;

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
    /// The image this runner runs from, when it is known (`RUNNER_IMAGE`).
    pub runner_image: Option<protocol::RunnerImage>,
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
        runner_image: Option<protocol::RunnerImage>,
        shutdown: CancellationToken,
    ) -> Self {
        let api = OrchestratorClient::new(
            &settings.orchestrator_url,
            &settings.runner_api_key,
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
            runner_image,
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
