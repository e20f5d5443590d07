//! Preparing a task (ruby-bench, the benchmark image, `ruby -v`, the started container), with
//! retries, and the benchmark container up to the reports ruby-bench wrote; a container is
//! stopped and removed whatever happens.

use std::io::Read as _;
use std::time::Duration;

use bollard::container::LogOutput;
use futures::StreamExt;
use protocol::{ClaimedTask, ErrorType, Phase, layout};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{BenchOutput, Failure, Progress, Provenance, TaskContext, Unfinished};
use crate::docker::{ContainerGuard, ContainerSpec, DockerError};
use crate::orchestrator::with_jitter;
use crate::ruby_bench;

/// How long a stopped benchmark container gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Lines of stderr quoted in an error message.
const ERROR_TAIL_LINES: usize = 20;

/// Prepares the task (ruby-bench, the benchmark image, `ruby -v`, the started container),
/// retrying with a backoff, then runs ruby-bench to its reports. A task that cannot be
/// prepared after every attempt is [`Unfinished::NotPrepared`]: it never ran.
pub(super) async fn execute(
    context: &TaskContext,
    task: &ClaimedTask,
    progress: &watch::Sender<Progress>,
    provenance: &mut Provenance,
    lost: &CancellationToken,
) -> Result<BenchOutput, Unfinished> {
    let settings = &context.shared.settings;
    let mut pause = settings.prepare_retry();
    let mut attempt = 1;
    let container = loop {
        progress.send_replace(Progress {
            phase: Phase::Provision,
            benchmark: None,
            pct: None,
            message: format!("preparing {}", provenance.image),
        });
        match prepare(context, task, provenance, lost).await {
            Ok(prepared) => break prepared,
            Err(Unfinished::Failed(failure)) if attempt < settings.prepare_attempts => {
                let wait = with_jitter(pause);
                tracing::warn!(
                    "{}: preparing task {} failed (attempt {attempt} of {}, {}): {}; trying again in {wait:?}",
                    context.runner_id,
                    task.id,
                    settings.prepare_attempts,
                    failure.error_type,
                    failure.message
                );
                progress.send_replace(Progress {
                    phase: Phase::Provision,
                    benchmark: None,
                    pct: None,
                    message: format!(
                        "attempt {attempt} failed ({}), trying again in {} s",
                        failure.error_type,
                        wait.as_secs()
                    ),
                });
                until_stopped(context, lost, tokio::time::sleep(wait)).await?;
                attempt += 1;
                pause *= 2;
            }
            Err(Unfinished::Failed(failure)) => return Err(Unfinished::NotPrepared(failure)),
            Err(other) => return Err(other),
        }
    };
    let result = run_container(context, &container, progress, lost).await;
    if let Err(err) = container.remove().await {
        tracing::warn!("{}: {err}", context.runner_id);
    }
    result
}

/// One attempt to prepare the task: ruby-bench, the benchmark image and its `ruby -v`, and
/// the benchmark container, created with ruby-bench in it and started. A container made by a
/// failed attempt is removed.
async fn prepare(
    context: &TaskContext,
    task: &ClaimedTask,
    provenance: &mut Provenance,
    lost: &CancellationToken,
) -> Result<ContainerGuard, Unfinished> {
    let shared = &context.shared;
    let source = until_stopped(context, lost, shared.ruby_bench())
        .await?
        .map_err(|err| Failure::new(ErrorType::RubyBenchFetch, format!("{err:#}")))?;
    provenance.source = Some(source.clone());
    let image_id = until_stopped(context, lost, shared.docker.ensure_image(&provenance.image))
        .await?
        .map_err(|err| {
            let error_type = match err {
                DockerError::Pull { .. } => ErrorType::ImagePull,
                _ => ErrorType::Container,
            };
            Failure::new(error_type, err.to_string())
        })?;
    // The image the benchmark runs in: the task's, or one derived from it once per host with
    // the packages ruby-bench needs.
    let packages = shared.settings.bench_packages();
    let image = if packages.is_empty() {
        provenance.image.clone()
    } else {
        let derive = shared
            .docker
            .ensure_derived_image(&provenance.image, &image_id, &packages);
        let (reference, id) = until_stopped(context, lost, derive)
            .await?
            .map_err(|err| Failure::new(ErrorType::ImagePull, err.to_string()))?;
        provenance.derived_image = Some(protocol::DerivedImage {
            reference: reference.clone(),
            id,
            packages,
        });
        reference
    };
    provenance.image_id = Some(image_id);
    provenance.ruby_description = ruby_description(context, &image)
        .await
        .map_err(|err| Failure::new(ErrorType::Container, err.to_string()))?;

    if lost.is_cancelled() {
        return Err(Unfinished::Lost);
    }
    if shared.shutdown.is_cancelled() {
        return Err(Unfinished::Shutdown);
    }
    let spec = ContainerSpec {
        image,
        cmd: ruby_bench::container_command(&task.ruby_bench),
        working_dir: Some(ruby_bench::CONTAINER_DIR.to_owned()),
        cpuset: context.cpu.to_string(),
        network: source.needs_network,
        runner_id: context.runner_id.clone(),
    };
    let container = shared
        .docker
        .create(&spec)
        .await
        .map_err(container_failure)?;
    let started = async {
        container.upload("/", source.archive.clone()).await?;
        container.start().await
    }
    .await;
    if let Err(err) = started {
        if let Err(remove_err) = container.remove().await {
            tracing::warn!("{}: {remove_err}", context.runner_id);
        }
        return Err(container_failure(err));
    }
    Ok(container)
}

/// Follows the started benchmark container to its end and reads its reports.
async fn run_container(
    context: &TaskContext,
    container: &ContainerGuard,
    progress: &watch::Sender<Progress>,
    lost: &CancellationToken,
) -> Result<BenchOutput, Unfinished> {
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
                Some(Err(err)) => return Err(Failure::new(ErrorType::Container, err.to_string()).with_output(stdout, stderr).into()),
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
            () = lost.cancelled() => break Some(Unfinished::Lost),
            () = context.shared.shutdown.cancelled() => break Some(Unfinished::Shutdown),
        }
    };
    if let Some(stopped) = stopped {
        tracing::info!("{}: stopping the benchmark container", context.runner_id);
        if let Err(err) = container.stop(STOP_GRACE).await {
            tracing::warn!("{}: {err}", context.runner_id);
        }
        return Err(stopped);
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
            ErrorType::RubyBenchFailed,
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
        return Err(failure.into());
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

fn container_failure(err: DockerError) -> Unfinished {
    Failure::new(ErrorType::Container, err.to_string()).into()
}

/// Runs a step that owns no container until it ends or the task is stopped.
async fn until_stopped<T>(
    context: &TaskContext,
    lost: &CancellationToken,
    step: impl Future<Output = T>,
) -> Result<T, Unfinished> {
    tokio::select! {
        value = step => Ok(value),
        () = lost.cancelled() => Err(Unfinished::Lost),
        () = context.shared.shutdown.cancelled() => Err(Unfinished::Shutdown),
    }
}

/// `ruby -v` of the benchmark image, from a short container on the slot's CPU.
async fn ruby_description(context: &TaskContext, image: &str) -> Result<String, DockerError> {
    let spec = ContainerSpec {
        image: image.to_owned(),
        cmd: vec!["ruby".into(), "-v".into()],
        working_dir: None,
        cpuset: context.cpu.to_string(),
        network: false,
        runner_id: context.runner_id.clone(),
    };
    let container = context.shared.docker.create(&spec).await?;
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
        tracing::warn!("{}: {err}", context.runner_id);
    }
    result
}

/// One file out of a tar archive from the Docker API (a plain tar of a container's directory,
/// not a task archive).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_come_out_of_docker_tars() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, "out/ruby-bench.txt", &b"hello"[..])
            .unwrap();
        let tar = builder.into_inner().unwrap();
        assert_eq!(read_tar_file(&tar, "out/ruby-bench.txt").unwrap(), b"hello");
        assert!(read_tar_file(&tar, "out/missing").is_none());
    }

    #[test]
    fn error_tails_keep_the_last_lines() {
        assert_eq!(tail_lines(b"a\n\nb\nc\n", 2), "b\nc");
        assert_eq!(tail_lines(b"", 2), "");
    }
}
