//! No task lost to the orchestrator's own faults: the local stack with real runner containers
//! doing real (ruby-bench-mini) benchmarks, and a fault injected mid-run: the orchestrator
//! killed, Postgres restarted, s3-local stopped during uploads, a host that cannot pull its
//! image, a type whose runner never comes. Clocks are short (a heartbeat timeout of seconds),
//! not slept through.

use std::time::Duration;

use local_stack::{LocalStack, RunnerPlan, StackOptions};
use protocol::{RunStatus, layout};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::harness::{container_of, containers_of, docker, project_root};

/// The orchestrator's heartbeat timeout in these tests.
const HEARTBEAT_TIMEOUT_SECS: u64 = 8;

/// The runners' heartbeat interval: a quarter of the timeout, as in a cloud run (30 s and
/// 120 s), so that a runner retrying through an outage is heard up to an interval after the
/// orchestrator is back, and an orchestrator that counted the outage as silence would fail
/// its task first.
const HEARTBEAT_INTERVAL_SECS: u64 = 2;

/// How long a whole run may take here.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// One fault test at a time: each runs benchmarks on both CPUs, and two at once would stretch
/// heartbeats towards the short timeout. The stand-in hosts' test (`hosts.rs`) takes it too.
pub(crate) static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A few seconds of benchmarking per task.
fn selection() -> Value {
    json!({ "benchmarks": ["fib", "nqueens"], "warmup": 1, "bench": 3, "modes": ["interp"] })
}

/// The local stack with `runners`, short timeouts and fast runner retries.
async fn stack_with(runners: Vec<RunnerPlan>, orchestrator_env: &[(&str, &str)]) -> LocalStack {
    LocalStack::up(&options(runners, orchestrator_env))
        .await
        .unwrap_or_else(|err| panic!("the local stack did not come up: {err:#}"))
}

/// The options of [`stack_with`].
fn options(runners: Vec<RunnerPlan>, orchestrator_env: &[(&str, &str)]) -> StackOptions {
    let mut env: Vec<(String, String)> = [
        ("HEARTBEAT_TIMEOUT_SECS", HEARTBEAT_TIMEOUT_SECS.to_string()),
        ("HEARTBEAT_CHECK_INTERVAL_SECS", "1".to_owned()),
        ("CLAIM_RETRY_AFTER_SECS", "1".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    env.extend(
        orchestrator_env
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
    );
    StackOptions {
        runners,
        ruby_bench_dir: project_root().join("fixtures/ruby-bench-mini"),
        bench_image_repo: "rcb/ruby".to_owned(),
        heartbeat_interval_secs: HEARTBEAT_INTERVAL_SECS,
        orchestrator_env: env,
    }
}

/// A runner of `instance_type` on `cpu`, retrying a failed preparation once after a second.
fn runner(instance_type: &str, cpu: &str) -> RunnerPlan {
    RunnerPlan::new(instance_type, cpu)
        .with_env("PREPARE_ATTEMPTS", "2")
        .with_env("PREPARE_RETRY_SECS", "1")
}

/// The stack's API.
struct Api<'a> {
    stack: &'a LocalStack,
    http: reqwest::Client,
}

impl<'a> Api<'a> {
    fn new(stack: &'a LocalStack) -> Self {
        Self {
            stack,
            http: reqwest::Client::new(),
        }
    }

    async fn start_run(&self, config: Value) -> i64 {
        let response = self
            .http
            .post(format!("{}/run/start", self.stack.orchestrator_url))
            .bearer_auth(&self.stack.api_key)
            .json(&config)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json::<Value>().await.unwrap()["run_id"]
            .as_i64()
            .unwrap()
    }

    /// `GET /run`, or `None` while the orchestrator does not answer.
    async fn run_status(&self) -> Option<RunStatus> {
        let response = self
            .http
            .get(format!("{}/run", self.stack.orchestrator_url))
            .bearer_auth(&self.stack.api_key)
            .send()
            .await
            .ok()?;
        (response.status() == 200).then_some(response.json().await.ok()?)
    }

    /// Waits for the run to be complete (its archive uploaded).
    async fn complete_run(&self) -> RunStatus {
        let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
        loop {
            if let Some(status) = self.run_status().await
                && status.status == protocol::RunState::Complete
            {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the run did not complete within {RUN_TIMEOUT:?}: {:?}\n{}",
                self.run_status().await,
                runner_logs(self.stack)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The run's `results.tar.gz`, unpacked: (path, contents).
    async fn archive(&self, status: &RunStatus) -> Vec<(String, Vec<u8>)> {
        let url = status
            .gzip_url
            .as_deref()
            .expect("a complete run's gzip_url");
        let bytes = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        run_archive_files(&bytes)
    }
}

/// The last lines each runner container of `stack` printed, for a failure's message.
fn runner_logs(stack: &LocalStack) -> String {
    containers_of(stack, "rcb/runner:latest")
        .iter()
        .map(|id| {
            let output = std::process::Command::new("docker")
                .args(["logs", "--tail", "40", id])
                .output()
                .expect("docker runs");
            format!(
                "runner container {id}:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The files of a run archive (a gzipped tar of task folders).
fn run_archive_files(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("results.tar.gz");
    std::fs::write(&archive, bytes).unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "results.tar.gz unpacks");
    std::fs::remove_file(&archive).unwrap();
    let mut files = Vec::new();
    for folder in std::fs::read_dir(dir.path()).unwrap() {
        let folder = folder.unwrap();
        for file in std::fs::read_dir(folder.path()).unwrap() {
            let file = file.unwrap();
            files.push((
                format!(
                    "{}/{}",
                    folder.file_name().to_string_lossy(),
                    file.file_name().to_string_lossy()
                ),
                std::fs::read(file.path()).unwrap(),
            ));
        }
    }
    files.sort();
    files
}

/// The stack's database, on its own small pool.
async fn database(stack: &LocalStack) -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&stack.database_url)
        .await
        .expect("the stack's database answers")
}

/// Waits until some task is in `phase` (by its last heartbeat), reading the database.
async fn wait_for_phase(stack: &LocalStack, phase: &str) {
    let reached = eventually(
        stack,
        RUN_TIMEOUT,
        "SELECT EXISTS (SELECT 1 FROM tasks WHERE state = 'claimed' AND phase = $1)",
        Some(phase),
    )
    .await;
    assert!(reached, "no task reached phase {phase}");
}

/// Whether `sql` (one boolean; `$1` bound to `arg` if given) answers true within `timeout`,
/// asked every 100 ms over a fresh connection each time: the database may be the fault.
async fn eventually(
    stack: &LocalStack,
    timeout: Duration,
    sql: &'static str,
    arg: Option<&str>,
) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if let Ok(db) = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&stack.database_url)
            .await
        {
            let mut query = sqlx::query_scalar(sql);
            if let Some(arg) = arg {
                query = query.bind(arg);
            }
            let answer: Option<bool> = query.fetch_one(&db).await.ok();
            db.close().await;
            if answer == Some(true) {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Asserts that every task of the run completed and none was ever failed (the archive
/// builder completes a task the orchestrator failed if its result reached S3: that would
/// hide a task failed for silence that could not have been heard).
async fn assert_all_completed(stack: &LocalStack, status: &RunStatus, total: u64) {
    assert_eq!(
        (
            status.tasks.total,
            status.tasks.completed,
            status.tasks.failed
        ),
        (total, total, 0),
        "{status:?}"
    );
    let db = database(stack).await;
    let late: Vec<String> =
        sqlx::query_scalar("SELECT message FROM tasks WHERE message LIKE 'completed late%'")
            .fetch_all(&db)
            .await
            .unwrap();
    db.close().await;
    assert_eq!(late, Vec::<String>::new(), "tasks failed on the way");
}

#[tokio::test]
async fn a_killed_orchestrator_back_after_three_heartbeat_timeouts_loses_no_task() {
    let _one = ONE_AT_A_TIME.lock().await;
    let stack = stack_with(vec![runner("fk-a", "0"), runner("fk-b", "1")], &[]).await;
    let api = Api::new(&stack);
    api.start_run(json!({
        "ruby_version": "3.1.2", "runs_per_instance_type": 2, "local": ["fk-a", "fk-b"],
        "ruby_bench": selection(),
    }))
    .await;
    wait_for_phase(&stack, "running").await;

    let orchestrator = container_of(&stack, "rcb/orchestrator:latest");
    docker(&["kill", "--signal", "KILL", &orchestrator]);
    tokio::time::sleep(Duration::from_secs(3 * HEARTBEAT_TIMEOUT_SECS)).await;
    docker(&["start", &orchestrator]);

    let status = api.complete_run().await;
    assert_all_completed(&stack, &status, 4).await;
    let files = api.archive(&status).await;
    for folder in ["fk-a-1", "fk-a-2", "fk-b-1", "fk-b-2"] {
        let meta = format!("{folder}/{}", layout::META_JSON);
        assert!(
            files.iter().any(|(path, _)| *path == meta),
            "{meta} in the archive"
        );
    }
}

#[tokio::test]
async fn a_restarted_postgres_loses_no_task() {
    let _one = ONE_AT_A_TIME.lock().await;
    let stack = stack_with(vec![runner("fp-a", "0"), runner("fp-b", "1")], &[]).await;
    let api = Api::new(&stack);
    api.start_run(json!({
        "ruby_version": "3.1.2", "runs_per_instance_type": 2, "local": ["fp-a", "fp-b"],
        "ruby_bench": selection(),
    }))
    .await;
    wait_for_phase(&stack, "running").await;

    let postgres = container_of(&stack, "rcb/postgres:15");
    docker(&["restart", "--time", "5", &postgres]);

    let status = api.complete_run().await;
    assert_all_completed(&stack, &status, 4).await;
}

#[tokio::test]
async fn s3_away_during_uploads_loses_no_task() {
    let _one = ONE_AT_A_TIME.lock().await;
    // Upload URLs that expire before a task ends: the runner asks for fresh ones.
    let stack = stack_with(
        vec![runner("fs-a", "0"), runner("fs-b", "1")],
        &[("PRESIGN_TTL_SECS", "2")],
    )
    .await;
    let api = Api::new(&stack);
    api.start_run(json!({
        "ruby_version": "3.1.2", "runs_per_instance_type": 2, "local": ["fs-a", "fs-b"],
        "ruby_bench": selection(),
    }))
    .await;
    wait_for_phase(&stack, "running").await;

    let s3 = container_of(&stack, "rcb/s3-local:latest");
    docker(&["stop", "--time", "1", &s3]);
    wait_for_phase(&stack, "uploading").await;
    // Twice the runner's first upload retry delay (1 s).
    tokio::time::sleep(Duration::from_secs(2)).await;
    docker(&["start", &s3]);

    let status = api.complete_run().await;
    assert_all_completed(&stack, &status, 4).await;
    let files = api.archive(&status).await;
    let metas = files
        .iter()
        .filter(|(path, _)| path.ends_with(layout::META_JSON))
        .count();
    assert_eq!(metas, 4, "every result in the archive");
}

#[tokio::test]
async fn a_host_that_cannot_pull_its_image_gives_its_tasks_to_a_healthy_one() {
    let _one = ONE_AT_A_TIME.lock().await;
    // The broken host is alone at first; the healthy one comes once it gave a task back. Its
    // registry refuses connections at once (Docker Hub's name sometimes takes the daemon
    // minutes to fail to resolve here).
    let broken = runner("fb", "0").with_env("BENCH_IMAGE_REPO", "127.0.0.1:9/no-such-ruby");
    let options = options(vec![broken], &[]);
    let mut stack = LocalStack::up(&options)
        .await
        .unwrap_or_else(|err| panic!("the local stack did not come up: {err:#}"));
    let api = Api::new(&stack);
    api.start_run(json!({
        "ruby_version": "3.1.2", "runs_per_instance_type": 3, "local": ["fb"],
        "ruby_bench": selection(),
    }))
    .await;
    let released = eventually(
        &stack,
        Duration::from_secs(60),
        "SELECT coalesce(sum(release_count), 0) > 0 FROM tasks",
        None,
    )
    .await;
    assert!(
        released,
        "the broken host gave no task back: {:?}\n{}",
        api.run_status().await,
        runner_logs(&stack)
    );
    stack
        .add_runner(&options, &runner("fb", "1"))
        .await
        .expect("the healthy runner starts");
    let api = Api::new(&stack);

    let status = api.complete_run().await;
    assert_all_completed(&stack, &status, 3).await;
    let db = database(&stack).await;
    let released: i64 = sqlx::query_scalar("SELECT sum(release_count) FROM tasks")
        .fetch_one(&db)
        .await
        .unwrap();
    let runner_ids: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT runner_id FROM tasks ORDER BY 1")
            .fetch_all(&db)
            .await
            .unwrap();
    db.close().await;
    assert!(released >= 1, "the broken host gave its task back");
    // The stack names the second runner of a type `<stack>-<type>-2`; slots add `-<n>`.
    assert_eq!(
        runner_ids,
        [format!("{}-fb-2-1", stack.stack_id)],
        "every task ended on the healthy host"
    );
    let broken = containers_of(&stack, "rcb/runner:latest")
        .iter()
        .map(|id| {
            docker(&[
                "inspect",
                "--format",
                "{{range .Config.Env}}{{println .}}{{end}}{{.State.Status}} {{.State.ExitCode}}",
                id,
            ])
        })
        .find(|described| described.contains("BENCH_IMAGE_REPO=127.0.0.1:9/no-such-ruby"))
        .expect("the broken runner's container");
    assert!(
        broken.ends_with("exited 4"),
        "the broken slot exits with its own code: {broken}"
    );
}

#[tokio::test]
async fn a_type_whose_runner_never_comes_fails_as_no_runner_and_the_run_completes() {
    let _one = ONE_AT_A_TIME.lock().await;
    let stack = stack_with(
        vec![runner("fn-real", "0")],
        &[("NO_RUNNER_TIMEOUT_SECS", "5")],
    )
    .await;
    let api = Api::new(&stack);
    api.start_run(json!({
        "ruby_version": "3.1.2", "runs_per_instance_type": 1, "local": ["fn-real", "fn-ghost"],
        "ruby_bench": selection(),
    }))
    .await;

    let status = api.complete_run().await;
    assert_eq!(
        (
            status.tasks.total,
            status.tasks.completed,
            status.tasks.failed
        ),
        (2, 1, 1),
        "{status:?}"
    );
    assert_eq!(
        status.failed_by_error_type,
        [("no_runner".to_owned(), 1)].into()
    );
    let files = api.archive(&status).await;
    let (_, error) = files
        .iter()
        .find(|(path, _)| path == "fn-ghost-1/error.json")
        .expect("the ghost type's error.json");
    let error: Value = serde_json::from_slice(error).unwrap();
    assert_eq!(error["error_type"], "no_runner", "{error}");
    assert!(
        files.iter().any(|(path, _)| path == "fn-real-1/meta.json"),
        "the real type's result"
    );

    // The dashboard says so too.
    let html = dashboard_page(&stack).await;
    assert!(html.contains("no_runner"), "{html}");
}

/// The dashboard's page, after logging in with the stack's operator password.
async fn dashboard_page(stack: &LocalStack) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http
        .post(format!("{}/login", stack.orchestrator_url))
        .header("origin", &stack.orchestrator_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("password={}", stack.operator_password))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303, "the login is accepted");
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let page = http
        .get(format!("{}/", stack.orchestrator_url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    page.text().await.unwrap()
}
