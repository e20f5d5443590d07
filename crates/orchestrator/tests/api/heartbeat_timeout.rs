//! The heartbeat timeout checker, driven by moving heartbeats back in the database's time.

use std::time::Duration;

use axum::http::StatusCode;
use orchestrator::db::{TaskId, tasks};
use orchestrator::jobs::check_heartbeats;
use protocol::{ErrorType, FailedBy, TaskStatus};
use serde_json::json;

use crate::harness::{TestApp, local_config};

const TIMEOUT: Duration = Duration::from_secs(120);

async fn task(app: &TestApp, id: i64) -> tasks::TaskModel {
    tasks::get_task(app.pool(), TaskId(id))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_silent_task_fails_at_the_timeout_and_not_before() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let (early, _) = app.claim_assigned("local", "local-1cpu", "r-early").await;
    let (late, _) = app.claim_assigned("local", "local-1cpu", "r-late").await;
    let (fresh, _) = app.claim_assigned("local", "local-2cpu", "r-fresh").await;
    app.age_heartbeat(early.id, 119).await;
    app.age_heartbeat(late.id, 120).await;

    let failed = check_heartbeats(app.pool(), TIMEOUT).await.unwrap();
    let failed: Vec<i64> = failed.iter().map(|task| task.id.0).collect();
    assert_eq!(failed, [late.id]);

    for id in [early.id, fresh.id] {
        assert_eq!(task(&app, id).await.state, TaskStatus::Claimed);
    }
    let timed_out = task(&app, late.id).await;
    assert_eq!(timed_out.state, TaskStatus::Failed);
    assert_eq!(
        timed_out.failed_by.as_deref(),
        Some(FailedBy::Orchestrator.as_str())
    );
    assert_eq!(
        timed_out.error_type.as_deref(),
        Some(ErrorType::HeartbeatTimeout.as_str())
    );
    assert!(
        timed_out
            .error_message
            .as_deref()
            .unwrap()
            .contains("120 seconds"),
        "{timed_out:?}"
    );

    // The runner learns it from its next heartbeat.
    let response = app
        .post(
            &format!("/tasks/{}/heartbeat", late.id),
            &json!({"runner_id": "r-late", "status": "running"}),
        )
        .await;
    let message = response.expect_error(StatusCode::CONFLICT);
    assert!(message.contains("heartbeats stopped arriving"), "{message}");

    // A second check changes nothing.
    assert!(
        check_heartbeats(app.pool(), TIMEOUT)
            .await
            .unwrap()
            .is_empty()
    );
    // A finished run builds its archive in the background: let it end first.
    app.wait_for_jobs().await;
}

#[tokio::test]
async fn the_checker_never_overwrites_a_task_completed_in_between() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let (claimed, _) = app.claim_assigned("local", "local-1cpu", "holder").await;
    app.age_heartbeat(claimed.id, 600).await;

    // The checker reads the silent task ...
    let silent = tasks::get_silent_tasks(app.pool(), 120.0).await.unwrap();
    assert_eq!(silent.len(), 1);
    // ... the runner completes it ...
    let key = protocol::layout::task_result_key(claimed.run_id, claimed.id);
    let response = app
        .post(
            &format!("/tasks/{}/complete", claimed.id),
            &json!({"runner_id": "holder", "s3_result_key": key}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    // ... and the checker's compare-and-set finds the version changed.
    let updated = tasks::update_task_timed_out(app.pool(), silent[0], 120.0, "timed out")
        .await
        .unwrap();
    assert!(updated.is_none());
    let completed = task(&app, claimed.id).await;
    assert_eq!(completed.state, TaskStatus::Completed);
    assert_eq!(completed.error_type, None);
    // A finished run builds its archive in the background: let it end first.
    app.wait_for_jobs().await;
}

#[tokio::test]
async fn the_checker_spares_a_task_whose_heartbeat_arrived_in_between() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let (claimed, _) = app.claim_assigned("local", "local-1cpu", "holder").await;
    app.age_heartbeat(claimed.id, 600).await;
    let silent = tasks::get_silent_tasks(app.pool(), 120.0).await.unwrap();
    assert_eq!(silent.len(), 1);
    // A heartbeat leaves the lock version alone, so the heartbeat's age decides.
    let response = app
        .post(
            &format!("/tasks/{}/heartbeat", claimed.id),
            &json!({"runner_id": "holder", "status": "running"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    let updated = tasks::update_task_timed_out(app.pool(), silent[0], 120.0, "timed out")
        .await
        .unwrap();
    assert!(updated.is_none());
    assert_eq!(task(&app, claimed.id).await.state, TaskStatus::Claimed);
}

#[tokio::test]
async fn the_last_timeout_of_a_run_builds_its_archive() {
    let app = TestApp::new().await;
    app.start_run(&json!({
        "ruby_version": "3.4.7", "runs_per_instance_type": 1, "run_id": 7, "local": ["l"]
    }))
    .await;
    let (claimed, _) = app.claim_assigned("local", "l", "gone").await;
    app.age_heartbeat(claimed.id, 121).await;
    assert_eq!(
        check_heartbeats(app.pool(), TIMEOUT).await.unwrap().len(),
        1
    );
    // `serve` runs this after each check; so does the test.
    orchestrator::jobs::spawn_build_if_finished(&app.state, orchestrator::db::RunId(7));
    app.wait_for_jobs().await;
    let archive = app.download_archive().await;
    assert_eq!(archive.paths(), ["l-1/error.json"]);
    assert_eq!(
        archive.json("l-1/error.json")["error_type"],
        ErrorType::HeartbeatTimeout.as_str()
    );
}
