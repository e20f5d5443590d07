//! `POST /run/stop`: ending a run early.

use axum::http::StatusCode;
use protocol::{ClaimResponse, ErrorType, layout};
use serde_json::{Value, json};

use crate::harness::{TestApp, local_config, tar_gz, upload};

#[tokio::test]
async fn stop_deletes_pending_fails_claimed_and_archives_what_completed() {
    let app = TestApp::new().await;
    let started = app.start_run(&local_config()).await;
    let (done, done_urls) = app.claim_assigned("local", "local-1cpu", "r-done").await;
    let (busy, _) = app.claim_assigned("local", "local-1cpu", "r-busy").await;
    let (other, _) = app.claim_assigned("local", "local-2cpu", "r-other").await;
    // local-2cpu run 2 stays pending.

    let output = b"fib 1.0 ms\n".as_slice();
    upload(&done_urls.result, tar_gz(&[(layout::OUTPUT_TXT, output)])).await;
    let key = layout::task_result_key(started.run_id, done.id);
    let response = app
        .post(
            &format!("/tasks/{}/complete", done.id),
            &json!({"runner_id": "r-done", "s3_result_key": key}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);

    let response = app.post("/run/stop", &Value::Null).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.json(),
        json!({"run_id": started.run_id, "tasks_deleted": 1, "tasks_failed": 2})
    );

    // The runners still at work learn it from their next heartbeat.
    for (task, runner) in [(&busy, "r-busy"), (&other, "r-other")] {
        let response = app
            .post(
                &format!("/tasks/{}/heartbeat", task.id),
                &json!({"runner_id": runner, "status": "running"}),
            )
            .await;
        let message = response.expect_error(StatusCode::CONFLICT);
        assert!(message.contains("stopped early"), "{message}");
    }
    assert_eq!(
        app.claim("local", "local-2cpu", "late").await,
        ClaimResponse::Done
    );

    app.wait_for_jobs().await;
    let run = app.get("/run").await.json();
    assert_eq!(run["status"], "complete");
    assert!(run["stopped_at"].is_string(), "{run}");
    assert!(run["completed_at"].is_string(), "{run}");
    assert_eq!(
        run["tasks"],
        json!({"total": 3, "pending": 0, "claimed": 0, "completed": 1, "failed": 2})
    );

    let archive = app.download_archive().await;
    assert_eq!(
        archive.dirs,
        ["local-1cpu-1", "local-1cpu-2", "local-2cpu-1"]
    );
    assert_eq!(
        archive.paths(),
        [
            "local-1cpu-1/output.txt",
            "local-1cpu-2/error.json",
            "local-2cpu-1/error.json"
        ]
    );
    assert_eq!(archive.files["local-1cpu-1/output.txt"], output);
    let error = archive.json("local-1cpu-2/error.json");
    assert_eq!(error["error_type"], ErrorType::RunStopped.as_str());
    assert!(
        error["error_message"]
            .as_str()
            .unwrap()
            .contains("ended early")
    );

    // Stopping again finds no running run; a new run may start.
    let message = app
        .post("/run/stop", &Value::Null)
        .await
        .expect_error(StatusCode::NOT_FOUND);
    assert!(message.contains("is complete"), "{message}");
    let mut next = local_config();
    next["run_id"] = json!(started.run_id + 1);
    app.start_run(&next).await;
}

#[tokio::test]
async fn stop_answers_404_without_a_running_run() {
    let app = TestApp::new().await;
    let message = app
        .post("/run/stop", &Value::Null)
        .await
        .expect_error(StatusCode::NOT_FOUND);
    assert!(message.contains("no run has been started"), "{message}");

    // A stopped run whose archive is still being built is not stopped twice.
    app.start_run(&local_config()).await;
    sqlx::query("UPDATE runs SET stopped_at = now(), archive_state = 'building'")
        .execute(app.pool())
        .await
        .unwrap();
    app.expect_unfinished_archive();
    let message = app
        .post("/run/stop", &Value::Null)
        .await
        .expect_error(StatusCode::NOT_FOUND);
    assert!(message.contains("stopped already"), "{message}");
}

#[tokio::test]
async fn stop_of_a_run_with_nothing_finished_completes_it_with_an_empty_archive() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let response = app.post("/run/stop", &Value::Null).await;
    assert_eq!(response.status, StatusCode::OK);
    app.wait_for_jobs().await;
    let archive = app.download_archive().await;
    assert!(
        archive.files.is_empty() && archive.dirs.is_empty(),
        "{archive:?}"
    );
}
