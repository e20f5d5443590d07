//! The harness itself: fresh databases, loopback-only labelled containers, clear
//! failures when Docker or an image is missing, and the test orchestrator's checks of what a
//! test leaves behind.

use std::process::Command;
use std::time::Duration;

use test_support::{
    DEFAULT_API_KEY, TestOrchestrator, catalog, check_docker, fresh_database, session_label,
};

/// Creates the same table in a fresh database; it would collide if two tests shared one.
async fn create_table_and_count_rows() -> i64 {
    let database = fresh_database().await;
    let pool = database.pool().await;
    sqlx::query("CREATE TABLE marker (id int)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO marker VALUES (1)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query_scalar("SELECT count(*) FROM marker")
        .fetch_one(&pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn first_test_has_its_own_database() {
    assert_eq!(create_table_and_count_rows().await, 1);
}

#[tokio::test]
async fn second_test_has_its_own_database() {
    assert_eq!(create_table_and_count_rows().await, 1);
}

#[tokio::test]
async fn databases_are_isolated_from_each_other() {
    let first = fresh_database().await;
    let second = fresh_database().await;
    assert_ne!(first.name, second.name);
    let first_pool = first.pool().await;
    sqlx::query("CREATE TABLE only_in_first (id int)")
        .execute(&first_pool)
        .await
        .unwrap();
    let visible: Option<String> = sqlx::query_scalar("SELECT to_regclass('only_in_first')::text")
        .fetch_one(&second.pool().await)
        .await
        .unwrap();
    assert_eq!(visible, None);
}

#[tokio::test]
async fn containers_are_labelled_and_published_on_loopback_only() {
    fresh_database().await;
    test_support::s3_server().await;
    let (key, value) = session_label();
    let ids = docker(&["ps", "-q", "--filter", &format!("label={key}={value}")]);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    assert_eq!(
        ids.len(),
        2,
        "one Postgres and one s3-local for this test process"
    );
    for id in ids {
        let labels = docker(&["inspect", "--format", "{{json .Config.Labels}}", id]);
        let expected = format!("\"{}\":\"{}\"", catalog().label, catalog().project);
        assert!(labels.contains(&expected), "{labels}");
        let bindings = docker(&[
            "inspect",
            "--format",
            "{{json .HostConfig.PortBindings}}",
            id,
        ]);
        assert!(bindings.contains("\"HostIp\":\"127.0.0.1\""), "{bindings}");
        assert!(!bindings.contains("\"HostIp\":\"\""), "{bindings}");
        let image = docker(&["inspect", "--format", "{{.Config.Image}}", id]);
        assert!(
            image.starts_with(&format!("{}/", catalog().prefix)),
            "{image}"
        );
    }
}

#[test]
fn a_missing_image_fails_with_the_command_that_builds_it() {
    let problem = check_docker("rcb/no-such-image:never").unwrap_err();
    assert!(problem.contains("cargo xtask images"), "{problem}");
}

fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A served test orchestrator with a run of four pending tasks started over HTTP.
async fn orchestrator_with_a_run(
    builder: test_support::TestOrchestratorBuilder,
) -> TestOrchestrator {
    let orchestrator = builder.serve().await;
    let response = reqwest::Client::new()
        .post(format!("{}/run/start", orchestrator.url()))
        .bearer_auth(DEFAULT_API_KEY)
        .json(&serde_json::json!({
            "ruby_version": "3.4.7", "runs_per_instance_type": 2, "run_id": 1733945123,
            "local": ["local-1cpu", "local-2cpu"]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    orchestrator
}

#[tokio::test]
async fn the_periodic_checks_fail_a_silent_task_and_stop_with_the_orchestrator() {
    let orchestrator = orchestrator_with_a_run(
        TestOrchestrator::builder()
            .periodic_checks(Duration::from_millis(200), Duration::from_secs(1)),
    )
    .await;
    sqlx::query(
        "UPDATE tasks SET state = 'claimed', runner_id = 'r', claimed_at = now(), \
         last_heartbeat_at = now() - interval '1 minute', lock_version = 1 \
         WHERE id = (SELECT min(id) FROM tasks)",
    )
    .execute(orchestrator.pool())
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE state = 'failed'")
            .fetch_one(orchestrator.pool())
            .await
            .unwrap();
        if failed == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the silent task was not failed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[should_panic(expected = "still running")]
async fn dropping_the_orchestrator_with_a_job_running_fails_the_test() {
    let orchestrator = TestOrchestrator::builder().build().await;
    orchestrator.state.jobs.spawn(std::future::pending::<()>());
}

#[tokio::test]
#[should_panic(expected = "the build crashed")]
async fn dropping_the_orchestrator_with_an_archive_left_building_fails_the_test() {
    let orchestrator = orchestrator_with_a_run(TestOrchestrator::builder()).await;
    // What a build that panicked leaves.
    sqlx::query("UPDATE runs SET archive_state = 'building'")
        .execute(orchestrator.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_archive_left_building_on_purpose_is_not_a_crash() {
    let orchestrator = orchestrator_with_a_run(TestOrchestrator::builder()).await;
    sqlx::query("UPDATE runs SET archive_state = 'building'")
        .execute(orchestrator.pool())
        .await
        .unwrap();
    orchestrator.expect_unfinished_archive();
}
