//! The closed vocabularies of failed tasks: every `error_type` this project writes, and who
//! failed a task.
//!
//! `error_type` travels as text (in `POST /tasks/:id/fail`, the `tasks` table and `error.json`)
//! and the orchestrator records whatever text a runner sends, so the wire and database fields
//! stay strings; what this project itself writes there is always one of [`ErrorType`].

use serde::{Deserialize, Serialize};

/// A short machine-readable kind of task failure, as written by the runner, the orchestrator
/// or its archive builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// Runner: the benchmark image is missing and could not be pulled.
    ImagePull,
    /// Runner: ruby-bench could not be fetched or read.
    RubyBenchFetch,
    /// Runner: a Docker operation failed.
    Container,
    /// Runner: ruby-bench exited without writing a report.
    RubyBenchFailed,
    /// Runner: the results could not be uploaded.
    Upload,
    /// Runner: it was told to stop (SIGTERM) in the middle of the task.
    RunnerStopped,
    /// Orchestrator: the task's heartbeats stopped arriving.
    HeartbeatTimeout,
    /// Orchestrator: the run was stopped early while the task was claimed.
    RunStopped,
    /// Orchestrator: no runner of the task's provider and instance type claimed or reported
    /// anything for `NO_RUNNER_TIMEOUT_SECS` (its hosts never came up, gave up or ended).
    NoRunner,
    /// Archive builder: a completed task's `result.tar.gz` is not in S3.
    ArchiveMissing,
    /// Archive builder: a task's archive could not be read (S3 failed, or it is not a gzipped
    /// tar).
    ArchiveUnreadable,
    /// Archive builder: a failed task has no recorded `error_type`.
    Unknown,
}

named_enum!(ErrorType, "error type",
    "image_pull, ruby_bench_fetch, container, ruby_bench_failed, upload, runner_stopped, \
     heartbeat_timeout, run_stopped, no_runner, archive_missing, archive_unreadable or unknown", {
    ImagePull => "image_pull",
    RubyBenchFetch => "ruby_bench_fetch",
    Container => "container",
    RubyBenchFailed => "ruby_bench_failed",
    Upload => "upload",
    RunnerStopped => "runner_stopped",
    HeartbeatTimeout => "heartbeat_timeout",
    RunStopped => "run_stopped",
    NoRunner => "no_runner",
    ArchiveMissing => "archive_missing",
    ArchiveUnreadable => "archive_unreadable",
    Unknown => "unknown",
});

/// Who failed a task: the runner through `/fail`, or the orchestrator (heartbeat timeout,
/// early stop). The `tasks` table's `failed_by` column holds these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailedBy {
    /// The runner that held the task reported the failure.
    Runner,
    /// The orchestrator failed the task itself.
    Orchestrator,
}

named_enum!(FailedBy, "failed by", "runner or orchestrator", {
    Runner => "runner",
    Orchestrator => "orchestrator",
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::assert_names_agree_with_serde;

    #[test]
    fn names_agree_with_serde() {
        assert_names_agree_with_serde(ErrorType::ALL);
        assert_names_agree_with_serde(FailedBy::ALL);
    }

    #[test]
    fn the_names_are_the_ones_written_before_the_enums() {
        // Stored in databases and results of earlier runs: these must never change.
        let names: Vec<&str> = ErrorType::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(
            names,
            [
                "image_pull",
                "ruby_bench_fetch",
                "container",
                "ruby_bench_failed",
                "upload",
                "runner_stopped",
                "heartbeat_timeout",
                "run_stopped",
                "no_runner",
                "archive_missing",
                "archive_unreadable",
                "unknown",
            ]
        );
        assert_eq!(FailedBy::Runner.as_str(), "runner");
        assert_eq!(FailedBy::Orchestrator.as_str(), "orchestrator");
    }
}
