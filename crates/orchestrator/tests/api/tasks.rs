//! `POST /tasks/{id}/heartbeat`, `/complete` and `/fail`.

use axum::http::StatusCode;
use orchestrator::db::{TaskId, tasks};
use protocol::{ErrorType, FailedBy, TaskStatus, layout};
use serde_json::{Value, json};

use crate::harness::{TestApp, local_config};

/// An app with a started run and one task claimed by `holder`; returns the task id.
async fn app_with_claimed_task() -> (TestApp, i64) {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let (task, _) = app.claim_assigned("local", "local-1cpu", "holder").await;
    (app, task.id)
}

fn result_key(id: i64) -> String {
    layout::task_result_key(1733945123, id)
}

/// Marks a task failed the way the heartbeat checker and an early stop do.
async fn fail_by_orchestrator(app: &TestApp, id: i64, error_type: ErrorType) {
    sqlx::query(
        "UPDATE tasks SET state = 'failed', failed_at = now(), failed_by = $3, \
         error_type = $2, error_message = 'failed by the orchestrator', \
         lock_version = lock_version + 1 WHERE id = $1",
    )
    .bind(id)
    .bind(error_type.as_str())
    .bind(FailedBy::Orchestrator.as_str())
    .execute(app.pool())
    .await
    .unwrap();
}

async fn task(app: &TestApp, id: i64) -> tasks::TaskModel {
    tasks::get_task(app.pool(), TaskId(id))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn heartbeat_records_progress_by_the_database_clock() {
    let (app, id) = app_with_claimed_task().await;
    let before = task(&app, id).await;
    let response = app
        .post(
            &format!("/tasks/{id}/heartbeat"),
            &json!({
                "runner_id": "holder",
                "status": "running",
                "current_benchmark": "optcarrot",
                "progress_pct": 45,
                "message": "Running optcarrot benchmark"
            }),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.body.is_empty());
    let after = task(&app, id).await;
    assert_eq!(after.phase.as_deref(), Some("running"));
    assert_eq!(after.current_benchmark.as_deref(), Some("optcarrot"));
    assert_eq!(after.progress_pct, Some(45));
    assert_eq!(
        after.message.as_deref(),
        Some("Running optcarrot benchmark")
    );
    assert!(after.last_heartbeat_at > before.last_heartbeat_at);
    // Heartbeats change no state.
    assert_eq!(after.lock_version, before.lock_version);

    // `finished` and `error` are recorded but change nothing; fields not sent are cleared.
    for phase in ["finished", "error"] {
        let response = app
            .post(
                &format!("/tasks/{id}/heartbeat"),
                &json!({"runner_id": "holder", "status": phase}),
            )
            .await;
        assert_eq!(response.status, StatusCode::OK);
        let now = task(&app, id).await;
        assert_eq!(now.state, TaskStatus::Claimed);
        assert_eq!(now.phase.as_deref(), Some(phase));
        assert_eq!(now.current_benchmark, None);
    }
}

#[tokio::test]
async fn heartbeat_conflicts_unless_the_runner_holds_the_task() {
    let (app, id) = app_with_claimed_task().await;
    let beat = |runner: &str| json!({"runner_id": runner, "status": "running"});
    let mut answers = Vec::new();
    let mut record = |case: &str, status: StatusCode, message: String| {
        answers.push(json!({"case": case, "status": status.as_u16(), "error": message}));
    };

    let r = app
        .post(&format!("/tasks/{id}/heartbeat"), &beat("intruder"))
        .await;
    record(
        "other runner",
        r.status,
        r.expect_error(StatusCode::CONFLICT),
    );

    // The other task of local-1cpu is still pending.
    let pending = id + 1;
    assert_eq!(task(&app, pending).await.state, TaskStatus::Pending);
    let r = app
        .post(&format!("/tasks/{pending}/heartbeat"), &beat("holder"))
        .await;
    record(
        "pending task",
        r.status,
        r.expect_error(StatusCode::CONFLICT),
    );

    let r = app.post("/tasks/999999/heartbeat", &beat("holder")).await;
    record(
        "unknown task",
        r.status,
        r.expect_error(StatusCode::NOT_FOUND),
    );

    fail_by_orchestrator(&app, id, ErrorType::HeartbeatTimeout).await;
    let r = app
        .post(&format!("/tasks/{id}/heartbeat"), &beat("holder"))
        .await;
    record("timed out", r.status, r.expect_error(StatusCode::CONFLICT));

    let (other, _) = app.claim_assigned("local", "local-2cpu", "holder-2").await;
    fail_by_orchestrator(&app, other.id, ErrorType::RunStopped).await;
    let r = app
        .post(&format!("/tasks/{}/heartbeat", other.id), &beat("holder-2"))
        .await;
    record(
        "run stopped",
        r.status,
        r.expect_error(StatusCode::CONFLICT),
    );

    insta::assert_json_snapshot!(answers);
}

#[tokio::test]
async fn complete_requires_the_issued_key_and_is_idempotent_for_the_holder() {
    let (app, id) = app_with_claimed_task().await;
    let path = format!("/tasks/{id}/complete");

    let wrong_key = app
        .post(
            &path,
            &json!({"runner_id": "holder", "s3_result_key": "results/42/result.tar.gz"}),
        )
        .await;
    assert_eq!(
        wrong_key.expect_error(StatusCode::BAD_REQUEST),
        format!(
            "\"s3_result_key\" must be the key issued for task {id}, \"{}\", got \"results/42/result.tar.gz\"",
            result_key(id)
        )
    );
    // Check order: a wrong key is a 400 even from a runner that does not hold the task.
    let r = app
        .post(
            &path,
            &json!({"runner_id": "intruder", "s3_result_key": "x"}),
        )
        .await;
    r.expect_error(StatusCode::BAD_REQUEST);

    let body = json!({"runner_id": "holder", "s3_result_key": result_key(id)});
    let intruder = json!({"runner_id": "intruder", "s3_result_key": result_key(id)});
    app.post(&path, &intruder)
        .await
        .expect_error(StatusCode::CONFLICT);

    let first = app.post(&path, &body).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.body.is_empty());
    let done = task(&app, id).await;
    assert_eq!(done.state, TaskStatus::Completed);
    assert_eq!(done.s3_result_key, Some(result_key(id)));

    // A retry answers 200 and changes nothing.
    let retry = app.post(&path, &body).await;
    assert_eq!(retry.status, StatusCode::OK);
    let again = task(&app, id).await;
    assert_eq!(again.lock_version, done.lock_version);
    assert_eq!(again.completed_at, done.completed_at);

    // Anyone else, and the holder through `/fail` or a heartbeat, get 409.
    let message = app
        .post(&path, &intruder)
        .await
        .expect_error(StatusCode::CONFLICT);
    assert_eq!(
        message,
        format!("task {id} is claimed by another runner, not \"intruder\"")
    );
    let message = app
        .post(
            &format!("/tasks/{id}/fail"),
            &json!({"runner_id": "holder", "error_type": "t", "error_message": "m"}),
        )
        .await
        .expect_error(StatusCode::CONFLICT);
    assert_eq!(message, format!("task {id} is already completed"));
    app.post(
        &format!("/tasks/{id}/heartbeat"),
        &json!({"runner_id": "holder", "status": "uploading"}),
    )
    .await
    .expect_error(StatusCode::CONFLICT);
    // The last change finished the run: its archive build must end before the app goes.
    app.wait_for_jobs().await;
}

#[tokio::test]
async fn fail_records_the_error_and_is_idempotent_for_the_holder() {
    let (app, id) = app_with_claimed_task().await;
    let path = format!("/tasks/{id}/fail");
    let body = json!({
        "runner_id": "holder",
        "error_type": ErrorType::RubyBenchFailed,
        "error_message": "Segmentation fault in optcarrot",
        "s3_error_key": layout::task_error_key(1733945123, id),
        "debug_mode": true
    });

    let mut wrong_key = body.clone();
    wrong_key["s3_error_key"] = json!("results/42/error.tar.gz");
    let message = app
        .post(&path, &wrong_key)
        .await
        .expect_error(StatusCode::BAD_REQUEST);
    assert!(
        message.starts_with("\"s3_error_key\" must be the key issued"),
        "{message}"
    );

    let first = app.post(&path, &body).await;
    assert_eq!(first.status, StatusCode::OK);
    let failed = task(&app, id).await;
    assert_eq!(failed.state, TaskStatus::Failed);
    assert_eq!(failed.failed_by.as_deref(), Some(FailedBy::Runner.as_str()));
    assert_eq!(
        failed.error_type.as_deref(),
        Some(ErrorType::RubyBenchFailed.as_str())
    );
    assert_eq!(
        failed.error_message.as_deref(),
        Some("Segmentation fault in optcarrot")
    );
    assert_eq!(failed.debug_mode, Some(true));
    assert!(failed.failed_at.is_some());

    let retry = app.post(&path, &body).await;
    assert_eq!(retry.status, StatusCode::OK);
    let again = task(&app, id).await;
    assert_eq!(again.lock_version, failed.lock_version);
    assert_eq!(again.failed_at, failed.failed_at);

    let mut intruder = body.clone();
    intruder["runner_id"] = json!("intruder");
    app.post(&path, &intruder)
        .await
        .expect_error(StatusCode::CONFLICT);
    let message = app
        .post(
            &format!("/tasks/{id}/complete"),
            &json!({"runner_id": "holder", "s3_result_key": result_key(id)}),
        )
        .await
        .expect_error(StatusCode::CONFLICT);
    assert_eq!(message, format!("task {id} has already failed"));

    // The minimal body of docs/decisions.md, with an `error_type` this project never writes: a
    // runner's text is recorded as it is.
    let (other, _) = app.claim_assigned("local", "local-2cpu", "holder-2").await;
    let minimal = app
        .post(
            &format!("/tasks/{}/fail", other.id),
            &json!({"runner_id": "holder-2", "error_type": "no_report", "error_message": "m"}),
        )
        .await;
    assert_eq!(minimal.status, StatusCode::OK);
    // The last change finished the run: its archive build must end before the app goes.
    app.wait_for_jobs().await;
}

#[tokio::test]
async fn complete_and_fail_conflict_after_the_orchestrator_took_the_task_away() {
    let (app, id) = app_with_claimed_task().await;
    fail_by_orchestrator(&app, id, ErrorType::HeartbeatTimeout).await;
    let complete = app
        .post(
            &format!("/tasks/{id}/complete"),
            &json!({"runner_id": "holder", "s3_result_key": result_key(id)}),
        )
        .await
        .expect_error(StatusCode::CONFLICT);
    let fail = app
        .post(
            &format!("/tasks/{id}/fail"),
            &json!({"runner_id": "holder", "error_type": ErrorType::RubyBenchFailed, "error_message": "m"}),
        )
        .await
        .expect_error(StatusCode::CONFLICT);
    let expected =
        format!("task {id} was failed because its heartbeats stopped arriving: stop working on it");
    assert_eq!(complete, expected);
    assert_eq!(fail, expected);
    let after = task(&app, id).await;
    assert_eq!(
        after.error_type.as_deref(),
        Some(ErrorType::HeartbeatTimeout.as_str())
    );
    // A finished run builds its archive in the background: let it end first.
    app.wait_for_jobs().await;
}

#[tokio::test]
async fn check_order_is_401_400_404_409() {
    let (app, id) = app_with_claimed_task().await;
    let bad_auth = Some("Bearer wrong");
    let good_auth = format!("Bearer {}", crate::harness::RUNNER_KEY);
    let send = |path: String, auth: Option<String>, body: Value| {
        let app = &app;
        async move {
            app.send(
                axum::http::Method::POST,
                &path,
                auth.as_deref(),
                body.to_string(),
            )
            .await
        }
    };
    for action in ["heartbeat", "complete", "fail"] {
        // Bad auth and bad body: 401.
        let r = send(
            format!("/tasks/abc/{action}"),
            bad_auth.map(Into::into),
            json!({}),
        )
        .await;
        r.expect_error(StatusCode::UNAUTHORIZED);
        // Bad body and unknown (or non-numeric) task: 400.
        for task in ["999999", "abc"] {
            let r = send(
                format!("/tasks/{task}/{action}"),
                Some(good_auth.clone()),
                json!({}),
            )
            .await;
            r.expect_error(StatusCode::BAD_REQUEST);
        }
        // Unknown task and wrong runner: 404.
        let body = match action {
            "heartbeat" => json!({"runner_id": "intruder", "status": "boot"}),
            "complete" => json!({"runner_id": "intruder", "s3_result_key": result_key(999999)}),
            _ => json!({"runner_id": "intruder", "error_type": "t", "error_message": "m"}),
        };
        let r = send(
            format!("/tasks/999999/{action}"),
            Some(good_auth.clone()),
            body.clone(),
        )
        .await;
        r.expect_error(StatusCode::NOT_FOUND);
        // Known task, wrong runner: 409 (with the right key for `/complete`).
        let body = match action {
            "complete" => json!({"runner_id": "intruder", "s3_result_key": result_key(id)}),
            _ => body,
        };
        let r = send(
            format!("/tasks/{id}/{action}"),
            Some(good_auth.clone()),
            body,
        )
        .await;
        r.expect_error(StatusCode::CONFLICT);
    }
    // The holder still holds it: nothing above changed the task.
    assert_eq!(task(&app, id).await.state, TaskStatus::Claimed);
}

#[tokio::test]
async fn heartbeats_are_hot_updates() {
    use sqlx::Connection;
    let (app, id) = app_with_claimed_task().await;
    let options: Option<Vec<String>> =
        sqlx::query_scalar("SELECT reloptions FROM pg_class WHERE relname = 'tasks'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(options, Some(vec!["fillfactor=70".to_owned()]));

    let mut connection = sqlx::PgConnection::connect(&app.database.url)
        .await
        .unwrap();
    let heartbeat: protocol::HeartbeatRequest = serde_json::from_value(
        json!({"runner_id": "holder", "status": "running", "current_benchmark": "fib", "progress_pct": 10}),
    )
    .unwrap();
    // `pg_stat_xact_user_tables` counts the current transaction's updates, so no waiting for
    // statistics to be flushed.
    let mut tx = connection.begin().await.unwrap();
    for _ in 0..20 {
        assert!(
            tasks::update_task_heartbeat(&mut *tx, TaskId(id), &heartbeat)
                .await
                .unwrap()
        );
    }
    let (updates, hot_updates): (i64, i64) = sqlx::query_as(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'tasks'",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        (updates, hot_updates),
        (20, 20),
        "not every heartbeat was a HOT update"
    );
    tx.rollback().await.unwrap();
}
