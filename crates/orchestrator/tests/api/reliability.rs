//! No task lost to the orchestrator's own faults (docs/decisions.md, "Reliability"): silence
//! counts only while the orchestrator listened, fresh upload URLs, tasks given back by broken
//! hosts, types without runners, archive builds that fail or stop half-way, and results that
//! reached S3 after their task was failed. Clocks are moved in the database, never slept
//! through.

use std::time::Duration;

use axum::http::StatusCode;
use orchestrator::db::{RunId, TaskId, hearing, runs, tasks};
use orchestrator::jobs::{self, Checks, check_heartbeats};
use protocol::{ArchiveState, ErrorType, FailedBy, RunState, TaskStatus, layout};
use serde_json::json;

use crate::harness::{TestApp, local_config, tar_gz, upload};

const TIMEOUT: Duration = Duration::from_secs(120);

/// The checks of a served orchestrator, as the defaults have them but for the timeouts.
const CHECKS: Checks = Checks {
    interval: Duration::from_secs(60),
    heartbeat_timeout: TIMEOUT,
    no_runner_timeout: Duration::from_secs(1200),
};

async fn task(app: &TestApp, id: i64) -> tasks::TaskModel {
    tasks::get_task(app.pool(), TaskId(id))
        .await
        .unwrap()
        .unwrap()
}

/// Moves the run's start `seconds` back, by the database clock.
async fn age_run(app: &TestApp, seconds: i64) {
    sqlx::query("UPDATE runs SET created_at = now() - make_interval(secs => $1)")
        .bind(seconds as f64)
        .execute(app.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn silence_counts_only_from_when_the_orchestrator_listens_again() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let (held, _) = app
        .claim_assigned("local", "local-1cpu", "r-through-outage")
        .await;
    // The last heartbeat arrived 10 minutes ago, before an outage of the orchestrator; it
    // started again 30 s ago.
    app.age_heartbeat(held.id, 600).await;
    app.listening_for(30).await;
    assert!(
        check_heartbeats(app.pool(), TIMEOUT)
            .await
            .unwrap()
            .is_empty(),
        "the runner could not have been heard during the outage"
    );
    // Nothing arrived for the whole timeout since it listens again.
    app.listening_for(120).await;
    let failed = check_heartbeats(app.pool(), TIMEOUT).await.unwrap();
    assert_eq!(
        failed.iter().map(|task| task.id.0).collect::<Vec<_>>(),
        [held.id]
    );
}

#[tokio::test]
async fn a_check_after_a_failed_one_starts_the_hearing_again() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let (held, _) = app.claim_assigned("local", "local-1cpu", "r").await;
    let mut check = jobs::PeriodicCheck::default();
    check.run(&app.state, &CHECKS).await.unwrap();
    let first = hearing::get_listening_since(app.pool()).await.unwrap();
    // Listening for an hour, on time; the task's last heartbeat was 100 s ago.
    app.listening_for(3600).await;
    app.age_heartbeat(held.id, 100).await;
    check.run(&app.state, &CHECKS).await.unwrap();
    let kept = hearing::get_listening_since(app.pool()).await.unwrap();
    assert!(kept < first, "an on-time check keeps the stretch");

    // The database goes away for less than a gap (here: the hearing's table does), and a
    // check fails; heartbeats could not have been recorded then either.
    sqlx::query("ALTER TABLE orchestrator_hearing RENAME TO hearing_away")
        .execute(app.pool())
        .await
        .unwrap();
    check.run(&app.state, &CHECKS).await.unwrap_err();
    sqlx::query("ALTER TABLE hearing_away RENAME TO orchestrator_hearing")
        .execute(app.pool())
        .await
        .unwrap();
    // 30 s more of silence: over the timeout since the heartbeat, not since it listens again.
    app.age_heartbeat(held.id, 130).await;
    check.run(&app.state, &CHECKS).await.unwrap();
    let again = hearing::get_listening_since(app.pool()).await.unwrap();
    assert!(again > kept, "{again:?} {kept:?}");
    assert_eq!(task(&app, held.id).await.state, TaskStatus::Claimed);
    // Each check looks at the run's archive in a background job.
    app.wait_for_jobs().await;
}

#[tokio::test]
async fn before_the_first_periodic_check_nothing_is_silent() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let (held, _) = app.claim_assigned("local", "local-1cpu", "r").await;
    sqlx::query("UPDATE tasks SET last_heartbeat_at = now() - interval '1 hour'")
        .execute(app.pool())
        .await
        .unwrap();
    assert!(
        check_heartbeats(app.pool(), TIMEOUT)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(task(&app, held.id).await.state, TaskStatus::Claimed);
}

#[tokio::test]
async fn a_start_or_a_gap_between_checks_starts_the_hearing_again() {
    let app = TestApp::new().await;
    let db = app.pool();
    let max_gap = CHECKS.max_gap().as_secs_f64();
    let first = hearing::record_check(db, true, max_gap).await.unwrap();
    // The next check, on time, keeps the stretch.
    sqlx::query("UPDATE orchestrator_hearing SET listening_since = listening_since - interval '1 hour', last_check_at = now() - interval '60 seconds'")
        .execute(db)
        .await
        .unwrap();
    let kept = hearing::record_check(db, false, max_gap).await.unwrap();
    assert!(kept < first - time::Duration::minutes(59), "{kept} {first}");
    // A check after a gap longer than two intervals and the margin (the database was away).
    sqlx::query("UPDATE orchestrator_hearing SET last_check_at = now() - interval '126 seconds'")
        .execute(db)
        .await
        .unwrap();
    let after_gap = hearing::record_check(db, false, max_gap).await.unwrap();
    assert!(after_gap >= first, "{after_gap} {first}");
    // A new process starts one whatever the last check was.
    sqlx::query(
        "UPDATE orchestrator_hearing SET listening_since = listening_since - interval '1 hour'",
    )
    .execute(db)
    .await
    .unwrap();
    let restarted = hearing::record_check(db, true, max_gap).await.unwrap();
    assert!(restarted >= after_gap, "{restarted} {after_gap}");
    assert_eq!(
        hearing::get_listening_since(db).await.unwrap(),
        Some(restarted)
    );
}

#[tokio::test]
async fn the_holder_gets_fresh_upload_urls_that_work_and_nobody_else_does() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let (held, _) = app.claim_assigned("local", "local-1cpu", "r-holder").await;
    let path = format!("/tasks/{}/upload-urls", held.id);

    let response = app.post(&path, &json!({"runner_id": "r-holder"})).await;
    assert_eq!(response.status, StatusCode::OK);
    let urls: protocol::PresignedUrls = serde_json::from_value(response.json()).unwrap();
    assert!(
        urls.result
            .contains(&layout::task_result_key(held.run_id, held.id))
    );
    assert!(
        urls.error
            .contains(&layout::task_error_key(held.run_id, held.id))
    );
    upload(&urls.result, tar_gz(&[(layout::OUTPUT_TXT, b"ok\n")])).await;

    let other = app.post(&path, &json!({"runner_id": "r-other"})).await;
    let message = other.expect_error(StatusCode::CONFLICT);
    assert!(message.contains("claimed by another runner"), "{message}");
    let missing = app
        .post("/tasks/999999/upload-urls", &json!({"runner_id": "r"}))
        .await;
    missing.expect_error(StatusCode::NOT_FOUND);
    let bad = app.post(&path, &json!({"runner": "r-holder"})).await;
    let message = bad.expect_error(StatusCode::BAD_REQUEST);
    assert!(message.contains("runner_id"), "{message}");

    // Once completed, there is nothing left to upload.
    let key = layout::task_result_key(held.run_id, held.id);
    let completed = app
        .post(
            &format!("/tasks/{}/complete", held.id),
            &json!({"runner_id": "r-holder", "s3_result_key": key}),
        )
        .await;
    assert_eq!(completed.status, StatusCode::OK);
    let late = app.post(&path, &json!({"runner_id": "r-holder"})).await;
    let message = late.expect_error(StatusCode::CONFLICT);
    assert!(message.contains("already completed"), "{message}");
    app.wait_for_jobs().await;
}

#[tokio::test]
async fn a_released_task_is_pending_again_for_the_next_runner_of_its_type() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let (first, _) = app.claim_assigned("local", "local-1cpu", "r-broken").await;
    let (second, _) = app.claim_assigned("local", "local-1cpu", "r-healthy").await;
    assert_eq!((first.run, second.run), (1, 2));
    let path = format!("/tasks/{}/release", first.id);
    let body = json!({
        "runner_id": "r-broken", "error_type": ErrorType::ImagePull,
        "error_message": "pulling rcb/ruby:3.4.7 failed: toomanyrequests"
    });

    let refused = app
        .post(
            &path,
            &json!({"runner_id": "r-healthy", "error_type": "image_pull", "error_message": "x"}),
        )
        .await;
    refused.expect_error(StatusCode::CONFLICT);
    let response = app.post(&path, &body).await;
    assert_eq!(response.status, StatusCode::OK);
    let released = task(&app, first.id).await;
    assert_eq!(released.state, TaskStatus::Pending);
    assert_eq!(released.runner_id, None);
    assert_eq!(released.release_count, 1);
    assert_eq!(
        released.release_message.as_deref(),
        Some("image_pull: pulling rcb/ruby:3.4.7 failed: toomanyrequests")
    );
    // A retry finds it given back already.
    app.post(&path, &body)
        .await
        .expect_error(StatusCode::CONFLICT);
    // The next claim of the type gets it, though claims had moved past it.
    let (again, _) = app
        .claim_assigned("local", "local-1cpu", "r-healthy-2")
        .await;
    assert_eq!(again.id, first.id);
    let missing = app.post("/tasks/999999/release", &body).await;
    missing.expect_error(StatusCode::NOT_FOUND);
    let bad = app
        .post(&path, &json!({"runner_id": "r", "error_type": ""}))
        .await;
    bad.expect_error(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_type_no_runner_came_for_fails_as_no_runner_and_the_run_finishes() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    // local-1cpu's runner is at work; local-2cpu's never came.
    let (one, _) = app.claim_assigned("local", "local-1cpu", "r-1").await;
    let (two, _) = app.claim_assigned("local", "local-1cpu", "r-2").await;

    // 19 minutes after the start, nothing fails yet.
    age_run(&app, 19 * 60).await;
    app.listening_for(19 * 60).await;
    jobs::check_once(&app.state, &CHECKS, false).await.unwrap();
    assert_eq!(app.get("/run").await.json()["tasks"]["failed"], 0);

    // At 20 minutes of listening the ghost type's tasks fail; the busy type's runners were
    // seen at their claims, so nothing of theirs does.
    age_run(&app, 20 * 60).await;
    app.listening_for(20 * 60).await;
    jobs::check_once(&app.state, &CHECKS, false).await.unwrap();
    let status = app.get("/run").await.json();
    assert_eq!(status["tasks"]["failed"], 2, "{status}");
    assert_eq!(status["failed_by_error_type"], json!({"no_runner": 2}));
    let ghost = tasks::get_run_tasks(app.pool(), RunId(1733945123))
        .await
        .unwrap()
        .into_iter()
        .filter(|task| task.instance_type == "local-2cpu")
        .collect::<Vec<_>>();
    for task in &ghost {
        assert_eq!(task.state, TaskStatus::Failed);
        assert_eq!(
            task.failed_by.as_deref(),
            Some(FailedBy::Orchestrator.as_str())
        );
        assert_eq!(
            task.error_type.as_deref(),
            Some(ErrorType::NoRunner.as_str())
        );
        let message = task.error_message.as_deref().unwrap();
        assert!(
            message.contains("no runner of local local-2cpu") && message.contains("1200 seconds"),
            "{message}"
        );
    }

    // The others finish, and the archive has the ghost type's error.json.
    for held in [one, two] {
        let key = layout::task_result_key(held.run_id, held.id);
        let response = app
            .post(
                &format!("/tasks/{}/complete", held.id),
                &json!({"runner_id": format!("r-{}", held.run), "s3_result_key": key}),
            )
            .await;
        assert_eq!(response.status, StatusCode::OK);
    }
    app.wait_for_jobs().await;
    let archive = app.download_archive().await;
    let error = archive.json("local-2cpu-1/error.json");
    assert_eq!(error["error_type"], "no_runner", "{error}");
}

#[tokio::test]
async fn a_type_whose_runner_was_seen_lately_keeps_its_pending_tasks() {
    let app = TestApp::new().await;
    app.start_run(&json!({
        "ruby_version": "3.4.7", "runs_per_instance_type": 3, "local": ["local-1cpu"]
    }))
    .await;
    age_run(&app, 3600).await;
    app.listening_for(3600).await;
    let (held, _) = app.claim_assigned("local", "local-1cpu", "r-slow").await;
    // Its last heartbeat, 19 minutes ago, is within the timeout (and the task is silent
    // for the heartbeat checker only after its own, longer, timeout here).
    app.age_heartbeat(held.id, 19 * 60).await;
    sqlx::query("UPDATE tasks SET claimed_at = now() - interval '50 minutes'")
        .execute(app.pool())
        .await
        .unwrap();
    let checks = Checks {
        heartbeat_timeout: Duration::from_secs(3600),
        ..CHECKS
    };
    jobs::check_once(&app.state, &checks, false).await.unwrap();
    assert_eq!(app.get("/run").await.json()["tasks"]["pending"], 2);
    // The check offered the run to the archive builder.
    app.wait_for_jobs().await;
}

#[tokio::test]
async fn a_result_that_reached_s3_after_its_task_timed_out_is_in_the_archive() {
    let app = TestApp::new().await;
    app.start_run(&json!({
        "ruby_version": "3.4.7", "runs_per_instance_type": 2, "local": ["local-1cpu"]
    }))
    .await;
    let (late, urls) = app.claim_assigned("local", "local-1cpu", "r-late").await;
    let (silent, _) = app.claim_assigned("local", "local-1cpu", "r-dead").await;
    // Both go silent; one had uploaded its result, but its /complete never got through.
    upload(
        &urls.result,
        tar_gz(&[
            (layout::OUTPUT_TXT, b"output\n"),
            (layout::META_JSON, b"{}\n"),
        ]),
    )
    .await;
    app.age_heartbeat(late.id, 121).await;
    app.age_heartbeat(silent.id, 121).await;
    assert_eq!(
        check_heartbeats(app.pool(), TIMEOUT).await.unwrap().len(),
        2
    );
    app.wait_for_jobs().await;
    // The archive build only starts at the next trigger; the run finished with the checker.
    jobs::build_if_finished(&app.state, RunId(late.run_id))
        .await
        .unwrap();

    let archive = app.download_archive().await;
    assert_eq!(
        archive.paths(),
        [
            "local-1cpu-1/meta.json",
            "local-1cpu-1/output.txt",
            "local-1cpu-2/error.json"
        ]
    );
    let recovered = task(&app, late.id).await;
    assert_eq!(recovered.state, TaskStatus::Completed);
    assert_eq!(recovered.failed_by, None);
    assert!(
        recovered
            .message
            .as_deref()
            .unwrap()
            .starts_with("completed late: its result reached S3 after the orchestrator failed it (heartbeat_timeout"),
        "{recovered:?}"
    );
    let status = app.get("/run").await.json();
    assert_eq!(
        (&status["tasks"]["completed"], &status["tasks"]["failed"]),
        (&json!(1), &json!(1))
    );
}

#[tokio::test]
async fn a_build_that_uploaded_but_did_not_record_its_end_is_finished_by_the_next_check() {
    let app = TestApp::new().await;
    app.start_run(&json!({
        "ruby_version": "3.4.7", "runs_per_instance_type": 1, "local": ["local-1cpu"]
    }))
    .await;
    let (held, _) = app.claim_assigned("local", "local-1cpu", "r").await;
    let fail = app
        .post(
            &format!("/tasks/{}/fail", held.id),
            &json!({"runner_id": "r", "error_type": "ruby_bench_failed", "error_message": "exit 1"}),
        )
        .await;
    assert_eq!(fail.status, StatusCode::OK);
    app.wait_for_jobs().await;
    // What a build leaves when the database went away after its upload: the archive in S3,
    // the run still `building`, no build running.
    sqlx::query(
        "UPDATE runs SET state = 'running', completed_at = NULL, archive_state = 'building'",
    )
    .execute(app.pool())
    .await
    .unwrap();
    jobs::check_once(&app.state, &CHECKS, false).await.unwrap();
    app.wait_for_jobs().await;
    let run = runs::get_latest_run(app.pool()).await.unwrap().unwrap();
    assert_eq!(
        (run.state, run.archive_state),
        (RunState::Complete, ArchiveState::Uploaded)
    );
    app.download_archive().await;
}

#[tokio::test]
async fn ending_a_finished_run_whose_archive_failed_builds_it_now() {
    let app = TestApp::new().await;
    app.start_run(&json!({
        "ruby_version": "3.4.7", "runs_per_instance_type": 1, "local": ["local-1cpu"]
    }))
    .await;
    let (held, _) = app.claim_assigned("local", "local-1cpu", "r").await;
    let key = layout::task_result_key(held.run_id, held.id);
    assert!(
        tasks::update_task_completed(app.pool(), TaskId(held.id), "r", &key)
            .await
            .unwrap()
    );
    // The last build failed an hour before its next attempt is due.
    sqlx::query(
        "UPDATE runs SET archive_state = 'failed', archive_error = 'S3 said no', \
         archive_attempts = 6, archive_retry_at = now() + interval '1 hour'",
    )
    .execute(app.pool())
    .await
    .unwrap();
    assert!(
        jobs::build_if_finished(&app.state, RunId(held.run_id))
            .await
            .unwrap()
            .is_none()
    );
    let stopped = app.post("/run/stop", &json!({})).await;
    assert_eq!(stopped.status, StatusCode::OK, "{:?}", stopped.body);
    app.wait_for_jobs().await;
    let status = app.get("/run").await.json();
    assert_eq!(status["status"], "complete", "{status}");
    assert_eq!(status["archive"]["state"], "uploaded", "{status}");

    // Again on a stopped run whose build failed: it is tried again at once.
    let app = TestApp::new().await;
    app.start_run(&json!({
        "ruby_version": "3.4.7", "runs_per_instance_type": 1, "local": ["local-1cpu"]
    }))
    .await;
    sqlx::query(
        "UPDATE runs SET stopped_at = now(), archive_state = 'failed', \
         archive_error = 'S3 said no', archive_retry_at = now() + interval '1 hour'",
    )
    .execute(app.pool())
    .await
    .unwrap();
    sqlx::query("DELETE FROM tasks")
        .execute(app.pool())
        .await
        .unwrap();
    let again = app.post("/run/stop", &json!({})).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    let body = again.json();
    assert_eq!(
        (&body["tasks_deleted"], &body["tasks_failed"]),
        (&json!(0), &json!(0))
    );
    app.wait_for_jobs().await;
    assert_eq!(app.get("/run").await.json()["status"], "complete");
}
