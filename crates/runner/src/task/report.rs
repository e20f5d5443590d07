//! The end of a task: `meta.json`, the task archive (`result.tar.gz` or `error.tar.gz`, written
//! by [`protocol::archive`]), its upload and `/complete` or `/fail`.

use protocol::{
    ClaimedTask, CompleteRequest, ErrorInfo, ErrorType, FailRequest, PresignedUrls, ReleaseRequest,
    TaskMeta, archive, layout,
};
use time::OffsetDateTime;

use super::upload::{Archive, upload};
use super::{BenchOutput, Failure, Provenance, TaskContext, TaskOutcome};
use crate::cpus;
use crate::orchestrator::ApiError;
use crate::ruby_bench;

/// Packs and uploads `result.tar.gz` and reports the task complete; a failed upload is
/// reported as the task's failure instead.
pub(super) async fn report_success(
    context: &TaskContext,
    task: &ClaimedTask,
    urls: &PresignedUrls,
    output: BenchOutput,
    provenance: &Provenance,
) -> TaskOutcome {
    let report = String::from_utf8_lossy(&output.report_txt);
    let failed = ruby_bench::failed_benchmarks(&report);
    let mut meta = task_meta(
        context,
        task,
        provenance,
        &ruby_bench::benchmark_names(&report),
        failed,
    );
    meta.cgroup_cpuset = output.cgroup_cpuset.clone();
    let archive = archive::pack(
        &[
            (layout::OUTPUT_TXT, output.stdout.as_slice()),
            (layout::RUBY_BENCH_TXT, &output.report_txt),
            (layout::RUBY_BENCH_JSON, &output.report_json),
            (layout::RUBY_BENCH_CSV, &output.report_csv),
            (layout::META_JSON, &to_json(&meta)),
        ],
        now_unix(),
    );
    if let Err(err) = upload(context, task.id, Archive::Result, urls, archive.into()).await {
        let failure = Failure::new(
            ErrorType::Upload,
            format!("failed to upload {}: {err}", layout::RESULT_ARCHIVE),
        )
        .with_output(output.stdout, Vec::new());
        return report_failure(context, task, urls, failure, provenance).await;
    }
    let request = CompleteRequest {
        runner_id: context.runner_id.clone(),
        s3_result_key: layout::task_result_key(task.run_id, task.id),
    };
    match context.shared.api.complete(task.id, &request).await {
        Ok(()) => {
            tracing::info!("{}: task {} completed", context.runner_id, task.id);
            TaskOutcome::Completed
        }
        Err(ApiError::Conflict(message)) => {
            tracing::warn!(
                "{}: task {} was no longer ours at completion: {message}",
                context.runner_id,
                task.id
            );
            TaskOutcome::Lost
        }
        Err(err) => {
            tracing::error!(
                "{}: could not report task {} complete: {err}",
                context.runner_id,
                task.id
            );
            TaskOutcome::Lost
        }
    }
}

/// Packs and uploads `error.tar.gz` (its failure only logged) and reports the task failed.
pub(super) async fn report_failure(
    context: &TaskContext,
    task: &ClaimedTask,
    urls: &PresignedUrls,
    failure: Failure,
    provenance: &Provenance,
) -> TaskOutcome {
    tracing::warn!(
        "{}: task {} failed ({}): {}",
        context.runner_id,
        task.id,
        failure.error_type,
        failure.message
    );
    let meta = task_meta(context, task, provenance, &[], Vec::new());
    let info = ErrorInfo {
        error_type: failure.error_type.to_string(),
        error_message: failure.message.clone(),
        exit_code: failure.exit_code,
    };
    let archive = archive::pack(
        &[
            (layout::ERROR_JSON, to_json(&info).as_slice()),
            (layout::OUTPUT_TXT, &failure.stdout),
            (layout::STDERR_TXT, &failure.stderr),
            (layout::META_JSON, &to_json(&meta)),
        ],
        now_unix(),
    );
    let s3_error_key = match upload(context, task.id, Archive::Error, urls, archive.into()).await {
        Ok(()) => Some(layout::task_error_key(task.run_id, task.id)),
        Err(err) => {
            tracing::error!(
                "{}: failed to upload {}: {err}",
                context.runner_id,
                layout::ERROR_ARCHIVE
            );
            None
        }
    };
    let request = FailRequest {
        runner_id: context.runner_id.clone(),
        error_type: failure.error_type.to_string(),
        error_message: failure.message,
        s3_error_key,
        debug_mode: Some(task.debug_mode),
    };
    match context.shared.api.fail(task.id, &request).await {
        Ok(()) => TaskOutcome::Failed {
            hold: task.debug_mode,
        },
        Err(err) => {
            tracing::error!(
                "{}: could not report task {} failed: {err}",
                context.runner_id,
                task.id
            );
            TaskOutcome::Lost
        }
    }
}

/// Gives back a task whose host could not prepare it (the benchmark never started): the
/// orchestrator puts it back to pending for another runner, and this slot stops claiming.
pub(super) async fn report_not_prepared(
    context: &TaskContext,
    task: &ClaimedTask,
    failure: Failure,
) -> TaskOutcome {
    tracing::error!(
        "{}: could not prepare task {} ({}): {}; giving it back and claiming no more on this host",
        context.runner_id,
        task.id,
        failure.error_type,
        failure.message
    );
    let request = ReleaseRequest {
        runner_id: context.runner_id.clone(),
        error_type: failure.error_type.to_string(),
        error_message: failure.message,
    };
    if let Err(err) = context.shared.api.release(task.id, &request).await {
        tracing::error!(
            "{}: could not give task {} back: {err}; the orchestrator fails it when its \
             heartbeats stop",
            context.runner_id,
            task.id
        );
    }
    TaskOutcome::NotPrepared
}

fn task_meta(
    context: &TaskContext,
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
    let identity = &context.shared.identity;
    TaskMeta {
        schema_version: TaskMeta::SCHEMA_VERSION,
        run_id: task.run_id,
        task_id: task.id,
        provider: task.provider,
        instance_type: task.instance_type.clone(),
        run: task.run,
        runner_id: context.runner_id.clone(),
        region: identity.region.clone(),
        zone: identity.zone.clone(),
        ruby_version: task.ruby_version.clone(),
        ruby_description: provenance.ruby_description.clone(),
        modes: task.ruby_bench.modes.clone(),
        cpu_model: cpus::cpu_model(),
        pinned_cpu: Some(context.cpu),
        smt_siblings: cpus::smt_siblings(context.cpu),
        kernel: cpus::kernel_release(),
        // Read from inside the benchmark container when it ran (see `report_success`).
        cgroup_cpuset: None,
        image: provenance.image.clone(),
        image_id: provenance.image_id.clone(),
        derived_image: provenance.derived_image.clone(),
        ruby_bench_commit: provenance
            .source
            .as_ref()
            .and_then(|source| source.commit.clone()),
        runner_image: context.shared.runner_image.clone(),
        ruby_bench_stand_in: provenance
            .source
            .as_ref()
            .is_some_and(|source| source.stand_in),
        benchmark_categories,
        failed_benchmarks: failed,
        started_at: provenance.started_at,
        finished_at: OffsetDateTime::now_utc(),
        cpu_steal_pct: provenance
            .ticks_before
            .zip(cpus::cpu_ticks(context.cpu))
            .and_then(|(before, after)| cpus::steal_pct(before, after)),
    }
}

fn to_json(value: &impl serde::Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("results serialize");
    bytes.push(b'\n');
    bytes
}

/// The modification time of the files of a task archive: when it was packed.
fn now_unix() -> u64 {
    u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0)
}
