//! One task from claim to `/complete` or `/fail`: provision the benchmark image and
//! ruby-bench, run ruby-bench pinned to the slot's CPU while heartbeats report progress,
//! package the results (or the error), upload them through the presigned URL, report.

use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use bollard::container::LogOutput;
use bytes::Bytes;
use futures::StreamExt;
use protocol::{
    ClaimedTask, CompleteRequest, ErrorInfo, FailRequest, HeartbeatRequest, Phase, PresignedUrls,
    TaskMeta, layout,
};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cpus;
use crate::docker::{ContainerGuard, ContainerSpec, DockerError};
use crate::orchestrator::{ApiError, with_jitter};
use crate::ruby_bench::{self, RubyBenchSource};
use crate::slot::Slot;

/// How long a stopped benchmark container gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Lines of stderr quoted in an error message.
const ERROR_TAIL_LINES: usize = 20;

/// Error types a runner reports with `/fail`.
pub mod error_type {
    /// The benchmark image is missing and could not be pulled.
    pub const IMAGE_PULL: &str = "image_pull";
    /// ruby-bench could not be fetched or read.
    pub const RUBY_BENCH_FETCH: &str = "ruby_bench_fetch";
    /// A Docker operation failed.
    pub const CONTAINER: &str = "container";
    /// ruby-bench exited without writing a report.
    pub const RUBY_BENCH_FAILED: &str = "ruby_bench_failed";
    /// The results could not be uploaded.
    pub const UPLOAD: &str = "upload";
    /// The runner was told to stop (SIGTERM) in the middle of the task.
    pub const RUNNER_STOPPED: &str = "runner_stopped";
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

/// Why a running task stopped early.
enum Stopped {
    Lost,
    Shutdown,
}

/// A task failure: its type, a message, and what ruby-bench printed so far.
struct Failure {
    error_type: &'static str,
    message: String,
    exit_code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Failure {
    fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
            exit_code: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
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
    ruby_description: String,
    source: Option<Arc<RubyBenchSource>>,
    started_at: OffsetDateTime,
    ticks_before: Option<cpus::CpuTicks>,
}

/// Runs one claimed task to its end.
pub async fn run_task(slot: &Slot, task: ClaimedTask, urls: PresignedUrls) -> TaskOutcome {
    let ctx = &slot.ctx;
    tracing::info!(
        "{}: task {} ({} {} run {}) on CPU {}",
        slot.runner_id,
        task.id,
        task.provider,
        task.instance_type,
        task.run,
        slot.cpu
    );
    let (progress, progress_rx) = watch::channel(Progress {
        phase: Phase::Boot,
        benchmark: None,
        pct: None,
        message: format!("claimed by {}", slot.runner_id),
    });
    let lost = CancellationToken::new();
    let heartbeats = tokio::spawn(heartbeat_loop(
        slot.clone(),
        task.id,
        progress_rx,
        lost.clone(),
    ));

    let mut provenance = Provenance {
        image: format!("{}:{}", ctx.settings.bench_image_repo, task.ruby_version),
        image_id: None,
        ruby_description: String::new(),
        source: None,
        started_at: OffsetDateTime::now_utc(),
        ticks_before: cpus::cpu_ticks(slot.cpu),
    };
    // `execute` watches `lost` and the shutdown itself: a container it runs must be
    // stopped and removed, not dropped half-way.
    let result = execute(slot, &task, &progress, &mut provenance, &lost).await;
    let outcome = match result {
        Ok(output) => {
            progress.send_replace(Progress {
                phase: Phase::Uploading,
                benchmark: None,
                pct: Some(100),
                message: "uploading results".into(),
            });
            report_success(slot, &task, &urls, output, &provenance).await
        }
        Err(Ok(failure)) => report_failure(slot, &task, &urls, failure, &provenance).await,
        Err(Err(Stopped::Lost)) => {
            tracing::warn!(
                "{}: task {} was taken away by the orchestrator; claiming again",
                slot.runner_id,
                task.id
            );
            TaskOutcome::Lost
        }
        Err(Err(Stopped::Shutdown)) => {
            let failure = Failure::new(
                error_type::RUNNER_STOPPED,
                "the runner was stopped (SIGTERM) during the task",
            );
            report_failure(slot, &task, &urls, failure, &provenance).await;
            TaskOutcome::Interrupted
        }
    };
    heartbeats.abort();
    outcome
}

/// Provisions and runs ruby-bench. `Err(Ok(..))` is a task failure, `Err(Err(..))` an
/// early stop.
async fn execute(
    slot: &Slot,
    task: &ClaimedTask,
    progress: &watch::Sender<Progress>,
    provenance: &mut Provenance,
    lost: &CancellationToken,
) -> Result<BenchOutput, Result<Failure, Stopped>> {
    let ctx = &slot.ctx;
    progress.send_replace(Progress {
        phase: Phase::Provision,
        benchmark: None,
        pct: None,
        message: format!("preparing {}", provenance.image),
    });

    let source = until_stopped(slot, lost, ctx.ruby_bench())
        .await?
        .map_err(|err| {
            Ok(Failure::new(
                error_type::RUBY_BENCH_FETCH,
                format!("{err:#}"),
            ))
        })?;
    provenance.source = Some(source.clone());
    let image_id = until_stopped(slot, lost, ctx.docker.ensure_image(&provenance.image))
        .await?
        .map_err(|err| {
            let error_type = match err {
                DockerError::Pull { .. } => error_type::IMAGE_PULL,
                _ => error_type::CONTAINER,
            };
            Ok(Failure::new(error_type, err.to_string()))
        })?;
    provenance.image_id = Some(image_id);
    provenance.ruby_description = ruby_description(slot, &provenance.image)
        .await
        .map_err(|err| Ok(Failure::new(error_type::CONTAINER, err.to_string())))?;

    if lost.is_cancelled() {
        return Err(Err(Stopped::Lost));
    }
    if ctx.shutdown.is_cancelled() {
        return Err(Err(Stopped::Shutdown));
    }
    let spec = ContainerSpec {
        image: provenance.image.clone(),
        cmd: ruby_bench::container_command(&task.ruby_bench),
        working_dir: Some(ruby_bench::CONTAINER_DIR.to_owned()),
        cpuset: slot.cpu.to_string(),
        network: source.needs_network,
        runner_id: slot.runner_id.clone(),
    };
    let container = ctx.docker.create(&spec).await.map_err(container_failure)?;
    let result = run_container(slot, &container, &source, progress, lost).await;
    if let Err(err) = container.remove().await {
        tracing::warn!("{}: {err}", slot.runner_id);
    }
    result
}

async fn run_container(
    slot: &Slot,
    container: &ContainerGuard,
    source: &RubyBenchSource,
    progress: &watch::Sender<Progress>,
    lost: &CancellationToken,
) -> Result<BenchOutput, Result<Failure, Stopped>> {
    container
        .upload("/", source.archive.clone())
        .await
        .map_err(container_failure)?;
    container.start().await.map_err(container_failure)?;
    progress.send_replace(Progress {
        phase: Phase::Running,
        benchmark: None,
        pct: Some(0),
        message: "ruby-bench started".into(),
    });

    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut line = Vec::new();
    let mut logs = std::pin::pin!(container.logs());
    let stopped = loop {
        tokio::select! {
            chunk = logs.next() => match chunk {
                None => break None,
                Some(Err(err)) => return Err(Ok(Failure::new(error_type::CONTAINER, err.to_string()).with_output(stdout, stderr))),
                Some(Ok(LogOutput::StdErr { message })) => stderr.extend_from_slice(&message),
                Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => {
                    stdout.extend_from_slice(&message);
                    for &byte in message.iter() {
                        if byte != b'\n' {
                            line.push(byte);
                            continue;
                        }
                        if let Some((name, pct)) = ruby_bench::parse_progress(&String::from_utf8_lossy(&line)) {
                            progress.send_replace(Progress {
                                phase: Phase::Running,
                                message: format!("Running {name} benchmark"),
                                benchmark: Some(name),
                                pct: Some(pct),
                            });
                        }
                        line.clear();
                    }
                }
                Some(Ok(LogOutput::StdIn { .. })) => {}
            },
            () = lost.cancelled() => break Some(Stopped::Lost),
            () = slot.ctx.shutdown.cancelled() => break Some(Stopped::Shutdown),
        }
    };
    if let Some(stopped) = stopped {
        tracing::info!("{}: stopping the benchmark container", slot.runner_id);
        if let Err(err) = container.stop(STOP_GRACE).await {
            tracing::warn!("{}: {err}", slot.runner_id);
        }
        return Err(Err(stopped));
    }

    let exit_code = container.wait().await.map_err(container_failure)?;
    let reports = container
        .download(ruby_bench::CONTAINER_OUT_DIR)
        .await
        .map_err(container_failure)?;
    let file = |name: &str| read_tar_file(&reports, &format!("out/{name}")).unwrap_or_default();
    let report_txt = file(layout::RUBY_BENCH_TXT);
    if report_txt.is_empty() {
        // No report came out: the task failed. A report with failing benchmarks (exit 1)
        // is a completed task that lists them in meta.json.
        let tail = tail_lines(&stderr, ERROR_TAIL_LINES);
        let mut failure = Failure::new(
            error_type::RUBY_BENCH_FAILED,
            format!(
                "ruby-bench exited with status {exit_code} without writing a report{}",
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {tail}")
                }
            ),
        )
        .with_output(stdout, stderr);
        failure.exit_code = i32::try_from(exit_code).ok();
        return Err(Ok(failure));
    }
    let cgroup_cpuset = String::from_utf8_lossy(&file(ruby_bench::CGROUP_CPUSET_FILE))
        .trim()
        .to_owned();
    Ok(BenchOutput {
        stdout,
        cgroup_cpuset: Some(cgroup_cpuset).filter(|cpuset| !cpuset.is_empty()),
        report_txt,
        report_json: file(layout::RUBY_BENCH_JSON),
        report_csv: file(layout::RUBY_BENCH_CSV),
    })
}

impl Failure {
    fn with_output(mut self, stdout: Vec<u8>, stderr: Vec<u8>) -> Self {
        self.stdout = stdout;
        self.stderr = stderr;
        self
    }
}

fn container_failure<E>(err: DockerError) -> Result<Failure, E> {
    Ok(Failure::new(error_type::CONTAINER, err.to_string()))
}

/// Runs a step that owns no container until it ends or the task is stopped.
async fn until_stopped<T, E>(
    slot: &Slot,
    lost: &CancellationToken,
    step: impl Future<Output = T>,
) -> Result<T, Result<E, Stopped>> {
    tokio::select! {
        value = step => Ok(value),
        () = lost.cancelled() => Err(Err(Stopped::Lost)),
        () = slot.ctx.shutdown.cancelled() => Err(Err(Stopped::Shutdown)),
    }
}

/// `ruby -v` of the benchmark image, from a short container on the slot's CPU.
async fn ruby_description(slot: &Slot, image: &str) -> Result<String, DockerError> {
    let spec = ContainerSpec {
        image: image.to_owned(),
        cmd: vec!["ruby".into(), "-v".into()],
        working_dir: None,
        cpuset: slot.cpu.to_string(),
        network: false,
        runner_id: slot.runner_id.clone(),
    };
    let container = slot.ctx.docker.create(&spec).await?;
    let result = async {
        container.start().await?;
        let mut output = Vec::new();
        let mut logs = std::pin::pin!(container.logs());
        while let Some(chunk) = logs.next().await {
            if let LogOutput::StdOut { message } = chunk? {
                output.extend_from_slice(&message);
            }
        }
        container.wait().await?;
        Ok(String::from_utf8_lossy(&output).trim().to_owned())
    }
    .await;
    if let Err(err) = container.remove().await {
        tracing::warn!("{}: {err}", slot.runner_id);
    }
    result
}

async fn report_success(
    slot: &Slot,
    task: &ClaimedTask,
    urls: &PresignedUrls,
    output: BenchOutput,
    provenance: &Provenance,
) -> TaskOutcome {
    let report = String::from_utf8_lossy(&output.report_txt);
    let failed = ruby_bench::failed_benchmarks(&report);
    let mut meta = task_meta(
        slot,
        task,
        provenance,
        &ruby_bench::benchmark_names(&report),
        failed,
    );
    meta.cgroup_cpuset = output.cgroup_cpuset.clone();
    let archive = gzip_tar(&[
        (layout::OUTPUT_TXT, output.stdout.as_slice()),
        (layout::RUBY_BENCH_TXT, &output.report_txt),
        (layout::RUBY_BENCH_JSON, &output.report_json),
        (layout::RUBY_BENCH_CSV, &output.report_csv),
        (layout::META_JSON, &to_json(&meta)),
    ]);
    if let Err(err) = upload(slot, &urls.result, archive).await {
        let failure = Failure::new(
            error_type::UPLOAD,
            format!("failed to upload {}: {err}", layout::RESULT_ARCHIVE),
        )
        .with_output(output.stdout, Vec::new());
        return report_failure(slot, task, urls, failure, provenance).await;
    }
    let request = CompleteRequest {
        runner_id: slot.runner_id.clone(),
        s3_result_key: layout::task_result_key(task.run_id, task.id),
    };
    match slot.ctx.api.complete(task.id, &request).await {
        Ok(()) => {
            tracing::info!("{}: task {} completed", slot.runner_id, task.id);
            TaskOutcome::Completed
        }
        Err(ApiError::Conflict(message)) => {
            tracing::warn!(
                "{}: task {} was no longer ours at completion: {message}",
                slot.runner_id,
                task.id
            );
            TaskOutcome::Lost
        }
        Err(err) => {
            tracing::error!(
                "{}: could not report task {} complete: {err}",
                slot.runner_id,
                task.id
            );
            TaskOutcome::Lost
        }
    }
}

async fn report_failure(
    slot: &Slot,
    task: &ClaimedTask,
    urls: &PresignedUrls,
    failure: Failure,
    provenance: &Provenance,
) -> TaskOutcome {
    tracing::warn!(
        "{}: task {} failed ({}): {}",
        slot.runner_id,
        task.id,
        failure.error_type,
        failure.message
    );
    let meta = task_meta(slot, task, provenance, &[], Vec::new());
    let info = ErrorInfo {
        error_type: failure.error_type.to_owned(),
        error_message: failure.message.clone(),
        exit_code: failure.exit_code,
    };
    let archive = gzip_tar(&[
        (layout::ERROR_JSON, to_json(&info).as_slice()),
        (layout::OUTPUT_TXT, &failure.stdout),
        (STDERR_TXT, &failure.stderr),
        (layout::META_JSON, &to_json(&meta)),
    ]);
    let s3_error_key = match upload(slot, &urls.error, archive).await {
        Ok(()) => Some(layout::task_error_key(task.run_id, task.id)),
        Err(err) => {
            tracing::error!(
                "{}: failed to upload {}: {err}",
                slot.runner_id,
                layout::ERROR_ARCHIVE
            );
            None
        }
    };
    let request = FailRequest {
        runner_id: slot.runner_id.clone(),
        error_type: failure.error_type.to_owned(),
        error_message: failure.message,
        s3_error_key,
        debug_mode: Some(task.debug_mode),
    };
    match slot.ctx.api.fail(task.id, &request).await {
        Ok(()) => TaskOutcome::Failed {
            hold: task.debug_mode,
        },
        Err(err) => {
            tracing::error!(
                "{}: could not report task {} failed: {err}",
                slot.runner_id,
                task.id
            );
            TaskOutcome::Lost
        }
    }
}

/// Name of ruby-bench's stderr in `error.tar.gz`.
pub const STDERR_TXT: &str = "stderr.txt";

fn task_meta(
    slot: &Slot,
    task: &ClaimedTask,
    provenance: &Provenance,
    benchmarks: &[String],
    failed: Vec<String>,
) -> TaskMeta {
    let categories = provenance.source.as_ref().map(|source| &source.categories);
    let benchmark_categories = benchmarks
        .iter()
        .map(|name| {
            (
                name.clone(),
                categories
                    .and_then(|known| known.get(name).copied())
                    .unwrap_or(protocol::Category::Other),
            )
        })
        .collect();
    let identity = &slot.ctx.identity;
    TaskMeta {
        schema_version: TaskMeta::SCHEMA_VERSION,
        run_id: task.run_id,
        task_id: task.id,
        provider: task.provider,
        instance_type: task.instance_type.clone(),
        run: task.run,
        runner_id: slot.runner_id.clone(),
        region: identity.region.clone(),
        zone: identity.zone.clone(),
        ruby_version: task.ruby_version.clone(),
        ruby_description: provenance.ruby_description.clone(),
        modes: task.ruby_bench.modes.clone(),
        cpu_model: cpus::cpu_model(),
        pinned_cpu: Some(slot.cpu),
        smt_siblings: cpus::smt_siblings(slot.cpu),
        kernel: cpus::kernel_release(),
        // Read from inside the benchmark container when it ran (see `report_success`).
        cgroup_cpuset: None,
        image: provenance.image.clone(),
        image_id: provenance.image_id.clone(),
        ruby_bench_commit: provenance
            .source
            .as_ref()
            .and_then(|source| source.commit.clone()),
        benchmark_categories,
        failed_benchmarks: failed,
        started_at: provenance.started_at,
        finished_at: OffsetDateTime::now_utc(),
        cpu_steal_pct: provenance
            .ticks_before
            .zip(cpus::cpu_ticks(slot.cpu))
            .and_then(|(before, after)| cpus::steal_pct(before, after)),
    }
}

fn to_json(value: &impl serde::Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("results serialize");
    bytes.push(b'\n');
    bytes
}

/// A flat `.tar.gz` of named files.
fn gzip_tar(files: &[(&str, &[u8])]) -> Bytes {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    let mtime = OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, *bytes)
            .expect("writing to memory cannot fail");
    }
    let encoder = builder.into_inner().expect("writing to memory cannot fail");
    encoder
        .finish()
        .expect("writing to memory cannot fail")
        .into()
}

/// One file out of a tar archive from the Docker API.
fn read_tar_file(archive: &[u8], path: &str) -> Option<Vec<u8>> {
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        if entry.path().ok()?.to_str() == Some(path) {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).ok()?;
            return Some(bytes);
        }
    }
    None
}

fn tail_lines(bytes: &[u8], count: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// PUTs an archive to its presigned URL, retrying within the orchestrator retry window.
async fn upload(slot: &Slot, url: &str, body: Bytes) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + slot.ctx.settings.claim_retry();
    let mut backoff = Duration::from_secs(1);
    loop {
        let problem = match slot.ctx.http.put(url).body(body.clone()).send().await {
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
            slot.runner_id
        );
        tokio::time::sleep(with_jitter(backoff)).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Sends heartbeats every interval and whenever the progress changes; cancels `lost`
/// when the orchestrator answers that the task is no longer this runner's.
async fn heartbeat_loop(
    slot: Slot,
    task_id: i64,
    mut progress: watch::Receiver<Progress>,
    lost: CancellationToken,
) {
    let mut ticker = tokio::time::interval(slot.ctx.settings.heartbeat_interval());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            changed = progress.changed() => if changed.is_err() { return },
        }
        let current = progress.borrow_and_update().clone();
        let request = HeartbeatRequest {
            runner_id: slot.runner_id.clone(),
            status: current.phase,
            current_benchmark: current.benchmark,
            progress_pct: current.pct,
            message: Some(current.message),
        };
        match slot.ctx.api.heartbeat(task_id, &request).await {
            Ok(()) => {}
            Err(ApiError::Conflict(message)) => {
                tracing::warn!("{}: heartbeat refused: {message}", slot.runner_id);
                lost.cancel();
                return;
            }
            Err(ApiError::Refused { status, message })
                if status == reqwest::StatusCode::NOT_FOUND =>
            {
                tracing::warn!("{}: task {task_id} is gone: {message}", slot.runner_id);
                lost.cancel();
                return;
            }
            // The orchestrator may be restarting: the benchmark carries on.
            Err(err) => tracing::warn!("{}: heartbeat failed: {err}", slot.runner_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_are_flat_and_readable() {
        let archive = gzip_tar(&[("output.txt", b"hello"), ("meta.json", b"{}")]);
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(archive.as_ref())
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(read_tar_file(&tar, "output.txt").unwrap(), b"hello");
        assert_eq!(read_tar_file(&tar, "meta.json").unwrap(), b"{}");
        assert!(read_tar_file(&tar, "missing").is_none());
    }

    #[test]
    fn error_tails_keep_the_last_lines() {
        assert_eq!(tail_lines(b"a\n\nb\nc\n", 2), "b\nc");
        assert_eq!(tail_lines(b"", 2), "");
    }
}
