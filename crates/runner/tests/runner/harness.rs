//! An orchestrator served over HTTP on 127.0.0.1 (test-support's `TestOrchestrator`), and
//! runner settings aimed at it.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::time::Duration;

use protocol::{RunStatus, StartRunResponse, TaskMeta, archive, layout};
use runner::{RunnerSettings, SlotMode};
use serde_json::Value;
use test_support::TestOrchestrator;

/// The operator key of test orchestrators (the tests start and read runs with it).
pub const API_KEY: &str = "runner-test-api-key";

/// The runner key of test orchestrators (the runners under test claim with it).
pub const RUNNER_KEY: &str = "runner-test-runner-key";

/// The Ruby image `cargo xtask images` builds: `rcb/ruby:<the Ruby it contains>`.
pub const BENCH_IMAGE_REPO: &str = "rcb/ruby";
/// The Ruby version Debian bookworm's image really contains.
pub const RUBY_VERSION: &str = "3.1.2";

/// An orchestrator on its own database and bucket, served on a fixed 127.0.0.1 port that
/// survives a stop and a restart: test-support's [`TestOrchestrator`] with this suite's key,
/// and the requests the tests send it.
pub struct Orchestrator(TestOrchestrator);

impl Deref for Orchestrator {
    type Target = TestOrchestrator;

    fn deref(&self) -> &TestOrchestrator {
        &self.0
    }
}

impl DerefMut for Orchestrator {
    fn deref_mut(&mut self) -> &mut TestOrchestrator {
        &mut self.0
    }
}

impl Orchestrator {
    /// A fresh orchestrator, serving.
    pub async fn start() -> Self {
        Self(
            TestOrchestrator::builder()
                .api_key(API_KEY)
                .runner_key(RUNNER_KEY)
                .claim_retry_after_secs(1)
                .presign_ttl(Duration::from_secs(600))
                .serve()
                .await,
        )
    }

    /// Starts a run through the API.
    pub async fn start_run(&self, config: Value) -> StartRunResponse {
        let response = reqwest::Client::new()
            .post(format!("{}/run/start", self.url()))
            .bearer_auth(API_KEY)
            .json(&config)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    /// `GET /run`.
    pub async fn run_status(&self) -> RunStatus {
        let response = reqwest::Client::new()
            .get(format!("{}/run", self.url()))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// A task's state, phase and error type, from the database.
    pub async fn task_row(&self, task_id: i64) -> (String, Option<String>, Option<String>) {
        sqlx::query_as("SELECT state, phase, error_type FROM tasks WHERE id = $1")
            .bind(task_id)
            .fetch_one(&self.state.db)
            .await
            .unwrap()
    }

    /// The files of an archive a runner uploaded, by name.
    pub async fn archive(&self, key: &str) -> Vec<(String, Vec<u8>)> {
        let object = self
            .bucket
            .server
            .client()
            .get_object()
            .bucket(&self.bucket.name)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|err| panic!("no object {key}: {err:?}"));
        let bytes = object.body.collect().await.unwrap().into_bytes();
        archive::unpack(&bytes).unwrap_or_else(|err| panic!("{key}: {err}"))
    }
}

/// The `meta.json` of an archive.
pub fn meta_of(files: &[(String, Vec<u8>)]) -> TaskMeta {
    let (_, meta) = files
        .iter()
        .find(|(name, _)| name == layout::META_JSON)
        .expect("meta.json in the archive");
    serde_json::from_slice(meta).unwrap()
}

/// The contents of one file of an archive.
pub fn file_of<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &files
        .iter()
        .find(|(file, _)| file == name)
        .unwrap_or_else(|| panic!("no {name} in the archive"))
        .1
}

/// The committed ruby-bench-mini.
pub fn ruby_bench_mini() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/ruby-bench-mini")
}

/// A copy of ruby-bench-mini to break on purpose.
pub fn ruby_bench_mini_copy() -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", ruby_bench_mini().display()))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(status.success());
    copy
}

/// Settings of a local runner for `instance_type`, on CPUs `cpuset`.
pub fn runner_settings(
    orchestrator: &Orchestrator,
    instance_type: &str,
    cpuset: &str,
    ruby_bench: &Path,
) -> RunnerSettings {
    RunnerSettings {
        orchestrator_url: orchestrator.url(),
        runner_api_key: RUNNER_KEY.to_owned(),
        bench_packages: None,
        provider: protocol::Provider::Local,
        instance_type: instance_type.to_owned(),
        runner_id: Some(format!("test-{instance_type}")),
        slots: None,
        slot_mode: SlotMode::Vcpu,
        cpuset: Some(cpuset.to_owned()),
        bench_image_repo: BENCH_IMAGE_REPO.to_owned(),
        ruby_bench_git_url: "https://example.invalid/ruby-bench.git".to_owned(),
        ruby_bench_commit: "0000000".to_owned(),
        ruby_bench_dir: Some(ruby_bench.to_owned()),
        // The runner runs in-process here; the local runner image stands for its own.
        runner_image: Some("rcb/runner:latest".to_owned()),
        cache_dir: std::env::temp_dir(),
        heartbeat_interval_secs: 1,
        claim_retry_secs: 90,
        prepare_attempts: 2,
        prepare_retry_secs: 1,
        metadata_url: "http://127.0.0.1:9".to_owned(),
    }
}

/// Containers of runners whose id starts with `prefix` that still exist.
pub fn runner_containers(prefix: &str) -> Vec<String> {
    let output = std::process::Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label={}", runner::docker::RUNNER_LABEL),
        ])
        .args([
            "--format",
            &format!(
                "{{{{.ID}}}} {{{{.Label \"{}\"}}}}",
                runner::docker::RUNNER_LABEL
            ),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| {
            line.split_once(' ')
                .is_some_and(|(_, id)| id.starts_with(prefix))
        })
        .map(str::to_owned)
        .collect()
}

/// Waits until `check` holds, for up to `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
