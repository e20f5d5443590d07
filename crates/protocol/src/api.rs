//! Request and response bodies of the orchestrator's JSON API (besides the run config).
//!
//! Request bodies come from runners, so they validate themselves when parsed (through
//! `from_json` or serde alike) and name the field in every message; fields they do not know are
//! ignored, so a runner may send more than this orchestrator reads. Response bodies parse
//! leniently: optional fields may be missing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::config::{Provider, RubyBenchSelection};
use crate::validation::{Fields, Result, ValidationError, into_object, parse_object};

/// The `error_type` the orchestrator records for claimed tasks when a run is stopped early.
pub const ERROR_TYPE_RUN_STOPPED: &str = "run_stopped";

/// The `error_type` the orchestrator records for a task whose heartbeats stopped arriving.
pub const ERROR_TYPE_HEARTBEAT_TIMEOUT: &str = "heartbeat_timeout";

/// How request bodies are named in messages about malformed JSON.
const REQUEST_BODY: &str = "request body";

/// The state of a task in the orchestrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Waiting for a runner to claim it.
    Pending,
    /// Claimed by a runner, which sends heartbeats.
    Claimed,
    /// Finished with its result uploaded.
    Completed,
    /// Failed, timed out or stopped; never retried.
    Failed,
}

named_enum!(TaskStatus, "task status", "pending, claimed, completed or failed", {
    Pending => "pending",
    Claimed => "claimed",
    Completed => "completed",
    Failed => "failed",
});

/// What a runner is doing, as reported in a heartbeat's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The instance started and the runner is initializing.
    Boot,
    /// Pulling the Docker image and setting up the environment.
    Provision,
    /// The benchmark is running.
    Running,
    /// Uploading results to S3.
    Uploading,
    /// Done; recorded but changes nothing (runners call `/complete`).
    Finished,
    /// Failed; recorded but changes nothing (runners call `/fail`).
    Error,
}

named_enum!(Phase, "heartbeat status", "boot, provision, running, uploading, finished or error", {
    Boot => "boot",
    Provision => "provision",
    Running => "running",
    Uploading => "uploading",
    Finished => "finished",
    Error => "error",
});

/// The state of a run in `GET /run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Tasks are being run, or the archive is being built.
    Running,
    /// The archive is uploaded and `gzip_url` is set.
    Complete,
}

named_enum!(RunState, "run status", "running or complete", {
    Running => "running",
    Complete => "complete",
});

/// The 201 body of `POST /run/start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRunResponse {
    /// The id of the new run.
    pub run_id: i64,
    /// How many tasks the run has.
    pub tasks_created: u64,
    /// The tasks, in creation order.
    pub tasks: Vec<TaskSummary>,
}

/// One task as listed by `POST /run/start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// The task id, used in `/tasks/:id/...` paths.
    pub id: i64,
    /// The provider whose runners may claim it.
    pub provider: Provider,
    /// The instance type whose runners may claim it.
    pub instance_type: String,
    /// Which run of its instance type it is, from 1.
    pub run: u32,
    /// Its current state.
    pub status: TaskStatus,
}

/// The body of `POST /tasks/claim`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
pub struct ClaimRequest {
    /// The runner's provider.
    pub provider: Provider,
    /// The runner's instance type (or local label).
    pub instance_type: String,
    /// Identifies the runner (and slot) across claim, heartbeat, complete and fail.
    pub runner_id: String,
}

impl ClaimRequest {
    /// Parses and validates a claim body from JSON text.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ValidationError> {
        Self::from_map(&parse_object(bytes, REQUEST_BODY)?)
    }

    fn from_map(map: &Map<String, Value>) -> Result<Self> {
        let fields = Fields::new(map);
        Ok(Self {
            provider: fields.required_name("provider", "")?,
            instance_type: fields.required_text("instance_type", "")?,
            runner_id: fields.required_text("runner_id", "")?,
        })
    }
}

/// The 200 body of `POST /tasks/claim`, tagged by `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ClaimResponse {
    /// The runner now holds `task` and uploads to `presigned_urls`.
    Assigned {
        /// The claimed task.
        task: ClaimedTask,
        /// Where to upload the task's result or error archive.
        presigned_urls: PresignedUrls,
    },
    /// Matching tasks exist but other runners won every claim attempt: ask again later.
    Wait {
        /// How long to wait before claiming again.
        retry_after_seconds: u64,
    },
    /// Nothing left for this runner: it exits.
    Done,
}

/// A task handed to a runner by `POST /tasks/claim`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedTask {
    /// The task id, used in `/tasks/:id/...` paths.
    pub id: i64,
    /// The run the task belongs to.
    pub run_id: i64,
    /// The provider the task runs on.
    pub provider: Provider,
    /// The instance type the task runs on.
    pub instance_type: String,
    /// Which run of its instance type it is, from 1.
    pub run: u32,
    /// The Ruby version to benchmark (the benchmark image's tag).
    pub ruby_version: String,
    /// Which benchmarks to run and how; the orchestrator always sends it fully resolved.
    #[serde(default)]
    pub ruby_bench: RubyBenchSelection,
    /// When true, a runner whose task fails keeps its host up.
    #[serde(default)]
    pub debug_mode: bool,
}

/// Presigned S3 PUT URLs for one task's archives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresignedUrls {
    /// Where `result.tar.gz` goes.
    pub result: String,
    /// Where `error.tar.gz` goes.
    pub error: String,
}

/// The body of `POST /tasks/:id/heartbeat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
pub struct HeartbeatRequest {
    /// The runner that holds the task.
    pub runner_id: String,
    /// What the runner is doing.
    pub status: Phase,
    /// The benchmark running now, while `status` is `running`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_benchmark: Option<String>,
    /// Rough progress through the task, 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_pct: Option<u8>,
    /// A line for the dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl HeartbeatRequest {
    /// Parses and validates a heartbeat body from JSON text.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ValidationError> {
        Self::from_map(&parse_object(bytes, REQUEST_BODY)?)
    }

    fn from_map(map: &Map<String, Value>) -> Result<Self> {
        let fields = Fields::new(map);
        Ok(Self {
            runner_id: fields.required_text("runner_id", "")?,
            status: fields.required_name("status", "")?,
            current_benchmark: fields.optional_string("current_benchmark")?,
            progress_pct: fields
                .optional_integer("progress_pct", 0, 100, "an integer from 0 to 100")?
                .map(|n| u8::try_from(n).expect("validated to be at most 100")),
            message: fields.optional_string("message")?,
        })
    }
}

/// The body of `POST /tasks/:id/complete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
pub struct CompleteRequest {
    /// The runner that holds the task.
    pub runner_id: String,
    /// The key the result was uploaded to; must equal the one the orchestrator issued.
    pub s3_result_key: String,
}

impl CompleteRequest {
    /// Parses and validates a complete body from JSON text.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ValidationError> {
        Self::from_map(&parse_object(bytes, REQUEST_BODY)?)
    }

    fn from_map(map: &Map<String, Value>) -> Result<Self> {
        let fields = Fields::new(map);
        Ok(Self {
            runner_id: fields.required_text("runner_id", "")?,
            s3_result_key: fields.required_text("s3_result_key", "")?,
        })
    }
}

/// The body of `POST /tasks/:id/fail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
pub struct FailRequest {
    /// The runner that holds the task.
    pub runner_id: String,
    /// A short machine-readable kind of failure, e.g. `benchmark_crash`.
    pub error_type: String,
    /// What went wrong, for people.
    pub error_message: String,
    /// The key `error.tar.gz` was uploaded to, if the upload worked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_error_key: Option<String>,
    /// Whether the runner keeps its host up for debugging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_mode: Option<bool>,
}

impl FailRequest {
    /// Parses and validates a fail body from JSON text.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ValidationError> {
        Self::from_map(&parse_object(bytes, REQUEST_BODY)?)
    }

    fn from_map(map: &Map<String, Value>) -> Result<Self> {
        let fields = Fields::new(map);
        Ok(Self {
            runner_id: fields.required_text("runner_id", "")?,
            error_type: fields.required_text("error_type", "")?,
            error_message: fields.required_text("error_message", "")?,
            s3_error_key: fields.optional_text("s3_error_key")?,
            debug_mode: fields.optional_bool("debug_mode")?,
        })
    }
}

/// Implements serde's `try_from = "Value"` for request bodies through their `from_map`.
macro_rules! try_from_value {
    ($($name:ident),+) => {
        $(impl TryFrom<Value> for $name {
            type Error = ValidationError;

            fn try_from(value: Value) -> Result<Self, Self::Error> {
                Self::from_map(&into_object(value, REQUEST_BODY)?)
            }
        })+
    };
}

try_from_value!(ClaimRequest, HeartbeatRequest, CompleteRequest, FailRequest);

/// The 200 body of `GET /run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStatus {
    /// The run's id.
    pub run_id: i64,
    /// Whether the run is still going.
    pub status: RunState,
    /// The Ruby version the run benchmarks.
    pub ruby_version: String,
    /// When `POST /run/start` created the run.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the archive was uploaded; left out while the run is going.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub completed_at: Option<OffsetDateTime>,
    /// When the run was ended early; always sent, `null` unless stopped.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub stopped_at: Option<OffsetDateTime>,
    /// How many tasks are in each state.
    pub tasks: TaskCounts,
    /// A presigned GET URL of `results.tar.gz` once the run is complete; always sent.
    #[serde(default)]
    pub gzip_url: Option<String>,
}

/// Task counts by state, in `GET /run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskCounts {
    /// All tasks of the run (after an early stop, without the deleted pending ones).
    pub total: u64,
    /// Tasks waiting for a runner.
    pub pending: u64,
    /// Tasks a runner holds.
    pub claimed: u64,
    /// Tasks with an uploaded result.
    pub completed: u64,
    /// Tasks that failed, timed out or were stopped.
    pub failed: u64,
}

impl TaskCounts {
    /// Tasks not yet completed or failed.
    pub fn unfinished(&self) -> u64 {
        self.pending + self.claimed
    }
}

/// The body of every 4xx (and 5xx) answer: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What was wrong and how to fix it, without a trailing period.
    pub error: String,
}

impl ErrorBody {
    /// An error body with this message.
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
        }
    }
}

impl From<ValidationError> for ErrorBody {
    fn from(err: ValidationError) -> Self {
        Self::new(err.to_string())
    }
}
