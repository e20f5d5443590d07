//! Request and response bodies of the orchestrator's JSON API (besides the run config).
//!
//! Request bodies come from runners, so they validate themselves when parsed (through
//! `from_json` or serde alike) and name the field in every message; fields they do not know are
//! ignored, so a runner may send more than this orchestrator reads. Response bodies parse
//! leniently: optional fields may be missing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::config::{Provider, RubyBenchSelection};
use crate::validation::{Fields, Result, ValidationError, as_object, parse_object};

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
    /// A short machine-readable kind of failure. Any text is accepted and recorded; this
    /// project's runner sends a [`crate::ErrorType`].
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

/// The body of `POST /tasks/:id/upload-urls`: the holder asks for fresh upload URLs (the
/// claim's may have expired, whatever their lifetime: the orchestrator's own credentials may
/// expire sooner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
pub struct UploadUrlsRequest {
    /// The runner that holds the task.
    pub runner_id: String,
}

impl UploadUrlsRequest {
    /// Parses and validates an upload-urls body from JSON text.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ValidationError> {
        Self::from_map(&parse_object(bytes, REQUEST_BODY)?)
    }

    fn from_map(map: &Map<String, Value>) -> Result<Self> {
        let fields = Fields::new(map);
        Ok(Self {
            runner_id: fields.required_text("runner_id", "")?,
        })
    }
}

/// The body of `POST /tasks/:id/release`: the holder gives back a task its host could not
/// prepare (image pull, ruby-bench fetch, Docker) before the benchmark started. The task goes
/// back to pending for another runner; it never ran, so it is not a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
pub struct ReleaseRequest {
    /// The runner that holds the task.
    pub runner_id: String,
    /// The kind of problem, a [`crate::ErrorType`] of provisioning (`image_pull`,
    /// `ruby_bench_fetch`, `container`).
    pub error_type: String,
    /// What went wrong, for people.
    pub error_message: String,
}

impl ReleaseRequest {
    /// Parses and validates a release body from JSON text.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ValidationError> {
        Self::from_map(&parse_object(bytes, REQUEST_BODY)?)
    }

    fn from_map(map: &Map<String, Value>) -> Result<Self> {
        let fields = Fields::new(map);
        Ok(Self {
            runner_id: fields.required_text("runner_id", "")?,
            error_type: fields.required_text("error_type", "")?,
            error_message: fields.required_text("error_message", "")?,
        })
    }
}

/// Implements serde's `try_from = "Value"` for request bodies through their `from_map`.
macro_rules! try_from_value {
    ($($name:ident),+) => {
        $(impl TryFrom<Value> for $name {
            type Error = ValidationError;

            fn try_from(value: Value) -> Result<Self, Self::Error> {
                Self::from_map(as_object(&value, REQUEST_BODY)?)
            }
        })+
    };
}

try_from_value!(
    ClaimRequest,
    HeartbeatRequest,
    CompleteRequest,
    FailRequest,
    UploadUrlsRequest,
    ReleaseRequest
);

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
    /// Failed tasks by `error_type`.
    #[serde(default)]
    pub failed_by_error_type: BTreeMap<String, u64>,
    /// The archive builder's progress on `results.tar.gz`.
    #[serde(default)]
    pub archive: ArchiveStatus,
}

/// The archive builder's progress on a run's `results.tar.gz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveState {
    /// Tasks are still running; nothing is built yet.
    #[default]
    None,
    /// The archive is being built.
    Building,
    /// The archive is in S3.
    Uploaded,
    /// The last attempt failed; the next one follows after a backoff.
    Failed,
}

named_enum!(ArchiveState, "archive state", "none, building, uploaded or failed", {
    None => "none",
    Building => "building",
    Uploaded => "uploaded",
    Failed => "failed",
});

/// The archive builder's progress, in `GET /run`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ArchiveStatus {
    /// Where the build is.
    pub state: ArchiveState,
    /// Why the last failed attempt failed, until a build succeeds; `null` if none did.
    #[serde(default)]
    pub error: Option<String>,
    /// Failed attempts in a row.
    #[serde(default)]
    pub attempts: u32,
    /// When the next attempt may start, after a failed one; `null` otherwise.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub retry_at: Option<OffsetDateTime>,
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

/// The 200 body of `POST /run/stop`: what ending the run early did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRunResponse {
    /// The run that was stopped.
    pub run_id: i64,
    /// Pending tasks deleted.
    pub tasks_deleted: u64,
    /// Claimed tasks marked failed with `error_type: run_stopped`.
    pub tasks_failed: u64,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Category, Mode};
    use serde::de::DeserializeOwned;
    use serde_json::json;
    use time::macros::datetime;

    /// Parses `body` as `T`, serializes it again and checks that nothing changed.
    fn round_trip<T: Serialize + DeserializeOwned>(body: &Value) -> T {
        let parsed: T = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(&serde_json::to_value(&parsed).unwrap(), body);
        parsed
    }

    fn claimed_task() -> ClaimedTask {
        ClaimedTask {
            id: 42,
            run_id: 1733945123,
            provider: Provider::Aws,
            instance_type: "c8g.medium".into(),
            run: 2,
            ruby_version: "3.4.7".into(),
            ruby_bench: RubyBenchSelection {
                benchmarks: vec!["fib".into(), "/^liquid/".into()],
                categories: vec![Category::Headline],
                warmup: Some(5),
                bench: Some(10),
                modes: vec![Mode::Yjit, Mode::Interp],
            },
            debug_mode: false,
        }
    }

    #[test]
    fn start_run_response_seed_example() {
        let body = json!({
            "run_id": 1733945123,
            "tasks_created": 9,
            "tasks": [
                {"id": 1, "provider": "aws", "instance_type": "c8g.medium", "run": 1, "status": "pending"},
                {"id": 2, "provider": "aws", "instance_type": "c8g.medium", "run": 2, "status": "pending"}
            ]
        });
        let response: StartRunResponse = round_trip(&body);
        assert_eq!(response.tasks[1].status, TaskStatus::Pending);
        assert_eq!(response.tasks[1].run, 2);
    }

    #[test]
    fn claim_request_seed_example() {
        let body = json!({
            "provider": "aws",
            "instance_type": "c8g.medium",
            "runner_id": "i-0abc123def456"
        });
        let request: ClaimRequest = round_trip(&body);
        assert_eq!(
            ClaimRequest::from_json(body.to_string().as_bytes()).unwrap(),
            request
        );
        assert_eq!(request.provider, Provider::Aws);
    }

    #[test]
    fn claim_response_assigned_extends_the_seed_example() {
        // The seed's body plus what docs/decisions.md adds to every claimed task.
        let body = json!({
            "status": "assigned",
            "task": {
                "id": 42,
                "provider": "aws",
                "instance_type": "c8g.medium",
                "run": 2,
                "ruby_version": "3.4.7",
                "run_id": 1733945123,
                "ruby_bench": {
                    "benchmarks": ["fib", "/^liquid/"], "categories": ["headline"],
                    "warmup": 5, "bench": 10, "modes": ["yjit", "interp"]
                },
                "debug_mode": false
            },
            "presigned_urls": {
                "result": "https://s3.amazonaws.com/bucket/results/42/result.tar.gz?X-Amz-...",
                "error": "https://s3.amazonaws.com/bucket/results/42/error.tar.gz?X-Amz-..."
            }
        });
        let response: ClaimResponse = round_trip(&body);
        let ClaimResponse::Assigned {
            task,
            presigned_urls,
        } = response
        else {
            panic!("expected assigned, got {response:?}");
        };
        assert_eq!(task, claimed_task());
        assert!(presigned_urls.error.contains("error.tar.gz"));
    }

    #[test]
    fn claimed_task_defaults_ruby_bench_and_debug_mode() {
        let task: ClaimedTask = serde_json::from_value(json!({
            "id": 42, "run_id": 7, "provider": "local", "instance_type": "local-1cpu", "run": 1,
            "ruby_version": "3.4.7", "something_new": true
        }))
        .unwrap();
        assert_eq!(task.ruby_bench, RubyBenchSelection::default());
        assert!(!task.debug_mode);
    }

    #[test]
    fn claim_response_wait_and_done_seed_examples() {
        let wait: ClaimResponse = round_trip(&json!({"status": "wait", "retry_after_seconds": 30}));
        assert_eq!(
            wait,
            ClaimResponse::Wait {
                retry_after_seconds: 30
            }
        );
        let done: ClaimResponse = round_trip(&json!({"status": "done"}));
        assert_eq!(done, ClaimResponse::Done);
        assert!(serde_json::from_value::<ClaimResponse>(json!({"status": "later"})).is_err());
        assert!(
            serde_json::from_value::<ClaimResponse>(json!({"retry_after_seconds": 3})).is_err()
        );
    }

    #[test]
    fn claim_responses_snapshot() {
        let responses = vec![
            ClaimResponse::Assigned {
                task: claimed_task(),
                presigned_urls: PresignedUrls {
                    result: "http://127.0.0.1:9000/rcb/runs/1733945123/tasks/42/result.tar.gz?X-Amz-Signature=abc".into(),
                    error: "http://127.0.0.1:9000/rcb/runs/1733945123/tasks/42/error.tar.gz?X-Amz-Signature=def".into(),
                },
            },
            ClaimResponse::Wait {
                retry_after_seconds: 5,
            },
            ClaimResponse::Done,
        ];
        insta::assert_json_snapshot!(responses);
    }

    #[test]
    fn heartbeat_seed_example() {
        let body = json!({
            "runner_id": "i-0abc123def456",
            "status": "running",
            "current_benchmark": "optcarrot",
            "progress_pct": 45,
            "message": "Running optcarrot benchmark"
        });
        let heartbeat: HeartbeatRequest = round_trip(&body);
        assert_eq!(heartbeat.status, Phase::Running);
        assert_eq!(heartbeat.progress_pct, Some(45));
        let minimal: HeartbeatRequest = round_trip(&json!({"runner_id": "r-1", "status": "boot"}));
        assert_eq!(minimal.current_benchmark, None);
        for phase in Phase::ALL {
            let parsed = HeartbeatRequest::from_json(
                json!({"runner_id": "r", "status": phase.as_str()})
                    .to_string()
                    .as_bytes(),
            )
            .unwrap();
            assert_eq!(parsed.status, *phase);
        }
    }

    #[test]
    fn complete_and_fail_seed_examples() {
        // The seed's complete body has a trailing comma, which is not JSON.
        let seed = br#"{
            "runner_id": "i-0abc123def456",
            "s3_result_key": "results/42/result.tar.gz",
        }"#;
        assert_eq!(
            CompleteRequest::from_json(seed).unwrap_err().to_string(),
            "request body is not valid JSON: trailing comma at line 4 column 9"
        );
        let complete: CompleteRequest = round_trip(&json!({
            "runner_id": "i-0abc123def456",
            "s3_result_key": "results/42/result.tar.gz"
        }));
        assert_eq!(complete.s3_result_key, "results/42/result.tar.gz");

        let fail: FailRequest = round_trip(&json!({
            "runner_id": "i-0abc123def456",
            "error_type": "benchmark_crash",
            "error_message": "Segmentation fault in optcarrot",
            "s3_error_key": "results/42/error.tar.gz",
            "debug_mode": false
        }));
        assert_eq!(fail.debug_mode, Some(false));
        let minimal: FailRequest = round_trip(&json!({
            "runner_id": "r", "error_type": "no_report", "error_message": "ruby-bench printed no report"
        }));
        assert_eq!(minimal.s3_error_key, None);
        assert_eq!(minimal.debug_mode, None);
    }

    #[test]
    fn every_request_validation_message() {
        fn check<T: std::fmt::Debug>(
            parse: fn(&[u8]) -> Result<T, ValidationError>,
            body: Value,
            expected: &str,
        ) {
            let err = parse(body.to_string().as_bytes()).unwrap_err();
            assert_eq!(err.to_string(), expected, "body: {body}");
        }
        let claim = ClaimRequest::from_json;
        check(
            claim,
            json!([]),
            "request body must be a JSON object, got an array",
        );
        check(
            claim,
            json!({"instance_type": "c8g.medium", "runner_id": "r"}),
            "missing field \"provider\"",
        );
        check(
            claim,
            json!({"provider": "gcp", "instance_type": "n2", "runner_id": "r"}),
            "\"provider\" \"gcp\" is not one of aws, azure or local",
        );
        check(
            claim,
            json!({"provider": 1, "instance_type": "n2", "runner_id": "r"}),
            "\"provider\" must be one of aws, azure or local, got 1",
        );
        check(
            claim,
            json!({"provider": "aws", "runner_id": "r"}),
            "missing field \"instance_type\"",
        );
        check(
            claim,
            json!({"provider": "aws", "instance_type": ["c8g.medium"], "runner_id": "r"}),
            "\"instance_type\" must be a string, got an array",
        );
        check(
            claim,
            json!({"provider": "aws", "instance_type": "c8g.medium"}),
            "missing field \"runner_id\"",
        );
        check(
            claim,
            json!({"provider": "aws", "instance_type": "c8g.medium", "runner_id": ""}),
            "\"runner_id\" is empty",
        );

        let heartbeat = HeartbeatRequest::from_json;
        check(
            heartbeat,
            json!({"status": "boot"}),
            "missing field \"runner_id\"",
        );
        check(
            heartbeat,
            json!({"runner_id": "r"}),
            "missing field \"status\"",
        );
        check(
            heartbeat,
            json!({"runner_id": "r", "status": "benchmarking"}),
            "\"status\" \"benchmarking\" is not one of boot, provision, running, uploading, finished or error",
        );
        check(
            heartbeat,
            json!({"runner_id": "r", "status": "running", "progress_pct": 101}),
            "\"progress_pct\" must be an integer from 0 to 100, got 101",
        );
        check(
            heartbeat,
            json!({"runner_id": "r", "status": "running", "progress_pct": -1}),
            "\"progress_pct\" must be an integer from 0 to 100, got -1",
        );
        check(
            heartbeat,
            json!({"runner_id": "r", "status": "running", "progress_pct": 45.5}),
            "\"progress_pct\" must be an integer from 0 to 100, got 45.5",
        );
        check(
            heartbeat,
            json!({"runner_id": "r", "status": "running", "current_benchmark": 3}),
            "\"current_benchmark\" must be a string, got 3",
        );
        check(
            heartbeat,
            json!({"runner_id": "r", "status": "running", "message": {"text": "hi"}}),
            "\"message\" must be a string, got an object",
        );

        let complete = CompleteRequest::from_json;
        check(
            complete,
            json!({"s3_result_key": "k"}),
            "missing field \"runner_id\"",
        );
        check(
            complete,
            json!({"runner_id": "r"}),
            "missing field \"s3_result_key\"",
        );
        check(
            complete,
            json!({"runner_id": "r", "s3_result_key": " "}),
            "\"s3_result_key\" is empty",
        );

        let fail = FailRequest::from_json;
        check(
            fail,
            json!({"error_type": "t", "error_message": "m"}),
            "missing field \"runner_id\"",
        );
        check(
            fail,
            json!({"runner_id": "r", "error_message": "m"}),
            "missing field \"error_type\"",
        );
        check(
            fail,
            json!({"runner_id": "r", "error_type": "t"}),
            "missing field \"error_message\"",
        );
        check(
            fail,
            json!({"runner_id": "r", "error_type": "t", "error_message": ""}),
            "\"error_message\" is empty",
        );
        check(
            fail,
            json!({"runner_id": "r", "error_type": "t", "error_message": "m", "s3_error_key": ""}),
            "\"s3_error_key\" is empty",
        );
        check(
            fail,
            json!({"runner_id": "r", "error_type": "t", "error_message": "m", "debug_mode": "false"}),
            "\"debug_mode\" must be true or false, got \"false\"",
        );
    }

    #[test]
    fn serde_validates_request_bodies_too() {
        let err =
            serde_json::from_str::<HeartbeatRequest>(r#"{"runner_id": "r", "status": "done"}"#)
                .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "\"status\" \"done\" is not one of boot, provision, running, uploading, finished or error"
            ),
            "{err}"
        );
        // Fields this version does not know are ignored.
        let claim: ClaimRequest = serde_json::from_value(json!({
            "provider": "local", "instance_type": "local-1cpu", "runner_id": "r", "slot": 2
        }))
        .unwrap();
        assert_eq!(claim.provider, Provider::Local);
    }

    #[test]
    fn run_status_seed_examples() {
        let running = json!({
            "run_id": 1733945123,
            "status": "running",
            "ruby_version": "3.4.7",
            "created_at": "2024-12-11T10:30:00Z",
            "tasks": {"total": 33, "pending": 12, "claimed": 3, "completed": 15, "failed": 3},
            "gzip_url": null
        });
        let status: RunStatus = serde_json::from_value(running.clone()).unwrap();
        assert_eq!(status.created_at, datetime!(2024-12-11 10:30:00 UTC));
        assert_eq!(status.completed_at, None);
        assert_eq!(status.stopped_at, None);
        assert_eq!(status.tasks.unfinished(), 15);
        // `stopped_at` is always sent (docs/decisions.md), which the seed's example predates,
        // and so are the failures by type and the archive's state.
        let mut expected = running;
        expected["stopped_at"] = Value::Null;
        expected["failed_by_error_type"] = json!({});
        expected["archive"] =
            json!({"state": "none", "error": null, "attempts": 0, "retry_at": null});
        assert_eq!(serde_json::to_value(&status).unwrap(), expected);

        let complete = json!({
            "run_id": 1733945123,
            "status": "complete",
            "ruby_version": "3.4.7",
            "created_at": "2024-12-11T10:30:00Z",
            "completed_at": "2024-12-11T14:45:00Z",
            "stopped_at": null,
            "tasks": {"total": 33, "pending": 0, "claimed": 0, "completed": 30, "failed": 3},
            "gzip_url": "https://s3.amazonaws.com/bucket/runs/1733945123/results.tar.gz?X-Amz-...",
            "failed_by_error_type": {"heartbeat_timeout": 1, "no_runner": 2},
            "archive": {"state": "uploaded", "error": null, "attempts": 0, "retry_at": null}
        });
        let status: RunStatus = round_trip(&complete);
        assert_eq!(status.status, RunState::Complete);
        assert_eq!(
            status.completed_at,
            Some(datetime!(2024-12-11 14:45:00 UTC))
        );
    }

    #[test]
    fn stopped_run_status_snapshot() {
        let status = RunStatus {
            run_id: 1733945123,
            status: RunState::Complete,
            ruby_version: "3.4.7".into(),
            created_at: datetime!(2024-12-11 10:30:00 UTC),
            completed_at: Some(datetime!(2024-12-11 11:02:30.5 UTC)),
            stopped_at: Some(datetime!(2024-12-11 11:02:00 UTC)),
            tasks: TaskCounts {
                total: 5,
                pending: 0,
                claimed: 0,
                completed: 3,
                failed: 2,
            },
            gzip_url: Some(
                "http://127.0.0.1:9000/rcb/runs/1733945123/results.tar.gz?X-Amz-Signature=abc"
                    .into(),
            ),
            failed_by_error_type: [("run_stopped".to_owned(), 2)].into(),
            archive: ArchiveStatus {
                state: ArchiveState::Uploaded,
                error: Some("an earlier attempt failed".into()),
                attempts: 1,
                retry_at: None,
            },
        };
        insta::assert_json_snapshot!(status);
    }

    #[test]
    fn error_body() {
        let body: ErrorBody = round_trip(&json!({"error": "no run in progress"}));
        assert_eq!(body, ErrorBody::new("no run in progress"));
        let from_validation = ErrorBody::from(ValidationError::field(
            "runner_id",
            "\"runner_id\" is empty",
        ));
        assert_eq!(
            serde_json::to_value(from_validation).unwrap(),
            json!({"error": "\"runner_id\" is empty"})
        );
    }

    #[test]
    fn names_agree_with_serde() {
        for status in TaskStatus::ALL {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                json!(status.as_str())
            );
            assert_eq!(status.as_str().parse::<TaskStatus>().unwrap(), *status);
        }
        for phase in Phase::ALL {
            assert_eq!(serde_json::to_value(phase).unwrap(), json!(phase.as_str()));
        }
        for state in RunState::ALL {
            assert_eq!(serde_json::to_value(state).unwrap(), json!(state.as_str()));
            assert_eq!(state.as_str().parse::<RunState>().unwrap(), *state);
        }
    }
}
