//! One task from claim to `/complete` or `/fail`: provision the benchmark image and
//! ruby-bench, run ruby-bench pinned to the slot's CPU while heartbeats report progress,
//! package the results (or the error), upload them through the presigned URL, report.
//!
//! - [`container`]: provisioning and the benchmark container, up to ruby-bench's reports;
//! - [`heartbeat`]: the heartbeats that report progress and learn that a task was taken away;
//! - [`report`]: `meta.json`, the task archive and `/complete` or `/fail`;
//! - [`upload`]: the PUT of the archive to its presigned URL.

mod container;
mod heartbeat;
mod report;
mod upload;

use std::sync::Arc;

use protocol::{ClaimedTask, ErrorType, Phase, PresignedUrls};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::context::RunnerContext;
use crate::cpus;
use crate::ruby_bench::RubyBenchSource;

/// What a task needs of the slot that runs it.
#[derive(Clone)]
pub struct TaskContext {
    /// What all slots of the runner share.
    pub shared: Arc<RunnerContext>,
    /// The slot's runner id, which claims and reports the task.
    pub runner_id: String,
    /// The CPU the task's containers are pinned to.
    pub cpu: u32,
}

/// How a task ended for the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskOutcome {
    /// Reported complete.
    Completed,
    /// Reported failed; `hold` when the run is in debug mode and the host must stay up.
    Failed { hold: bool },
    /// The orchestrator took the task away (stopped run, timeout): the slot claims again.
    Lost,
    /// The host could not prepare the task (image, ruby-bench, Docker) however often it
    /// tried; the task was given back, and the slot claims no more.
    NotPrepared,
    /// The runner is shutting down.
    Interrupted,
}

/// What heartbeats report.
#[derive(Debug, Clone)]
struct Progress {
    phase: Phase,
    benchmark: Option<String>,
    pct: Option<u8>,
    message: String,
}

/// Why running a task gave no results.
enum Unfinished {
    /// The task failed; it is reported with `/fail`.
    Failed(Failure),
    /// The host could not prepare it before the benchmark started, after every retry; it
    /// is given back with `/release`.
    NotPrepared(Failure),
    /// The orchestrator took the task away.
    Lost,
    /// The runner is shutting down.
    Shutdown,
}

impl From<Failure> for Unfinished {
    fn from(failure: Failure) -> Self {
        Self::Failed(failure)
    }
}

/// A task failure: its type, a message, and what ruby-bench printed so far.
struct Failure {
    error_type: ErrorType,
    message: String,
    exit_code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Failure {
    fn new(error_type: ErrorType, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
            exit_code: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }

    fn with_output(mut self, stdout: Vec<u8>, stderr: Vec<u8>) -> Self {
        self.stdout = stdout;
        self.stderr = stderr;
        self
    }
}

/// What a finished ruby-bench run left behind.
struct BenchOutput {
    stdout: Vec<u8>,
    cgroup_cpuset: Option<String>,
    report_txt: Vec<u8>,
    report_json: Vec<u8>,
    report_csv: Vec<u8>,
}

/// What is known about the environment of a task, for `meta.json`.
struct Provenance {
    image: String,
    image_id: Option<String>,
    /// The image derived from `image` with the packages ruby-bench needs, if any.
    derived_image: Option<protocol::DerivedImage>,
    ruby_description: String,
    source: Option<Arc<RubyBenchSource>>,
    started_at: OffsetDateTime,
    ticks_before: Option<cpus::CpuTicks>,
}

/// Runs one claimed task to its end.
pub async fn run_task(
    context: &TaskContext,
    task: ClaimedTask,
    urls: PresignedUrls,
) -> TaskOutcome {
    let runner_id = &context.runner_id;
    tracing::info!(
        "{runner_id}: task {} ({} {} run {}) on CPU {}",
        task.id,
        task.provider,
        task.instance_type,
        task.run,
        context.cpu
    );
    let (progress, progress_rx) = watch::channel(Progress {
        phase: Phase::Boot,
        benchmark: None,
        pct: None,
        message: format!("claimed by {runner_id}"),
    });
    let lost = CancellationToken::new();
    let heartbeats = tokio::spawn(heartbeat::heartbeat_loop(
        context.clone(),
        task.id,
        progress_rx,
        lost.clone(),
    ));

    let mut provenance = Provenance {
        image: format!(
            "{}:{}",
            context.shared.settings.bench_image_repo, task.ruby_version
        ),
        image_id: None,
        derived_image: None,
        ruby_description: String::new(),
        source: None,
        started_at: OffsetDateTime::now_utc(),
        ticks_before: cpus::cpu_ticks(context.cpu),
    };
    // `execute` watches `lost` and the shutdown itself: a container it runs must be
    // stopped and removed, not dropped half-way.
    let result = container::execute(context, &task, &progress, &mut provenance, &lost).await;
    let outcome = match result {
        Ok(output) => {
            progress.send_replace(Progress {
                phase: Phase::Uploading,
                benchmark: None,
                pct: Some(100),
                message: "uploading results".into(),
            });
            report::report_success(context, &task, &urls, output, &provenance).await
        }
        Err(Unfinished::Failed(failure)) => {
            report::report_failure(context, &task, &urls, failure, &provenance).await
        }
        Err(Unfinished::NotPrepared(failure)) => {
            report::report_not_prepared(context, &task, failure).await
        }
        Err(Unfinished::Lost) => {
            tracing::warn!(
                "{runner_id}: task {} was taken away by the orchestrator; claiming again",
                task.id
            );
            TaskOutcome::Lost
        }
        Err(Unfinished::Shutdown) => {
            let failure = Failure::new(
                ErrorType::RunnerStopped,
                "the runner was stopped (SIGTERM) during the task",
            );
            report::report_failure(context, &task, &urls, failure, &provenance).await;
            TaskOutcome::Interrupted
        }
    };
    heartbeats.abort();
    outcome
}
