//! `POST /tasks/claim`: assigned, wait, done and 404, and the compare-and-set itself.

use std::time::Duration;

use axum::http::StatusCode;
use orchestrator::db::{RunId, TaskId, runs, tasks};
use protocol::{ClaimResponse, Provider, TaskStatus};
use serde_json::json;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::harness::{RETRY_AFTER, TestApp, local_config, redact_urls};

#[tokio::test]
async fn claim_is_404_when_no_run_ever_existed() {
    let app = TestApp::new().await;
    let response = app
        .post(
            "/tasks/claim",
            &json!({"provider": "local", "instance_type": "local-1cpu", "runner_id": "r"}),
        )
        .await;
    assert_eq!(
        response.expect_error(StatusCode::NOT_FOUND),
        "no run has been started: POST /run/start first"
    );
}

#[tokio::test]
async fn claim_assigns_the_task_with_everything_the_runner_needs() {
    let app = TestApp::new().await;
    let mut config = local_config();
    config["ruby_bench"] = json!({"benchmarks": ["fib"], "modes": ["yjit", "interp"], "bench": 3});
    config["debug_mode"] = json!(true);
    app.start_run(&config).await;
    let response = app
        .post(
            "/tasks/claim",
            &json!({"provider": "local", "instance_type": "local-2cpu", "runner_id": "runner-a/1"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    let mut body = response.json();
    redact_urls(&mut body, &app);
    insta::assert_json_snapshot!(body);

    let task = tasks::get_task(app.pool(), TaskId(body["task"]["id"].as_i64().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(task.state, TaskStatus::Claimed);
    assert_eq!(task.runner_id.as_deref(), Some("runner-a/1"));
    assert_eq!(task.lock_version, 1);
    assert!(task.claimed_at.is_some());
    assert_eq!(task.claimed_at, task.last_heartbeat_at);
}

#[tokio::test]
async fn claim_is_done_when_nothing_matches_provider_and_instance_type() {
    let app = TestApp::new().await;
    app.start_run(&json!({
        "ruby_version": "3.4.7", "runs_per_instance_type": 2, "run_id": 1733945123,
        "aws": ["c8g.medium"], "local": ["local-1cpu"]
    }))
    .await;
    // Right instance type, wrong provider; and an instance type the run does not have.
    assert_eq!(
        app.claim("azure", "c8g.medium", "r").await,
        ClaimResponse::Done
    );
    assert_eq!(
        app.claim("local", "c8g.medium", "r").await,
        ClaimResponse::Done
    );
    assert_eq!(
        app.claim("aws", "c7g.medium", "r").await,
        ClaimResponse::Done
    );

    // Each runner of the right kind gets a task until none is left, then done.
    let (first, _) = app.claim_assigned("aws", "c8g.medium", "r-1").await;
    let (second, _) = app.claim_assigned("aws", "c8g.medium", "r-2").await;
    assert_eq!((first.run, second.run), (1, 2));
    assert_eq!(first.provider, Provider::Aws);
    assert_eq!(
        app.claim("aws", "c8g.medium", "r-3").await,
        ClaimResponse::Done
    );
    // The local tasks are untouched.
    let (local, _) = app.claim_assigned("local", "local-1cpu", "r-4").await;
    assert_eq!(local.instance_type, "local-1cpu");
}

#[tokio::test]
async fn claim_only_looks_at_the_latest_run() {
    let app = TestApp::new().await;
    let first = app.start_run(&local_config()).await;
    runs::update_run_complete(app.pool(), RunId(first.run_id), "k")
        .await
        .unwrap();
    // The first run's tasks are still pending, but that run is complete.
    assert_eq!(
        app.claim("local", "local-1cpu", "r").await,
        ClaimResponse::Done
    );
    let mut config = local_config();
    config["run_id"] = json!(1733950000);
    app.start_run(&config).await;
    let (task, _) = app.claim_assigned("local", "local-1cpu", "r").await;
    assert_eq!(task.run_id, 1733950000);
}

#[tokio::test]
async fn claim_waits_when_every_compare_and_set_is_lost() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    // Make every claim lose, as if other runners always got there first: a trigger that skips
    // updates to `claimed` leaves the compare-and-set with no row.
    sqlx::raw_sql(
        "CREATE FUNCTION lose_claims() RETURNS trigger LANGUAGE plpgsql AS \
             'BEGIN RETURN NULL; END'; \
         CREATE TRIGGER lose_claims BEFORE UPDATE ON tasks FOR EACH ROW \
             WHEN (NEW.state = 'claimed') EXECUTE FUNCTION lose_claims();",
    )
    .execute(app.pool())
    .await
    .unwrap();
    assert_eq!(
        app.claim("local", "local-1cpu", "r").await,
        ClaimResponse::Wait {
            retry_after_seconds: RETRY_AFTER
        }
    );
    // Nothing matches: done, not wait, even though claims would lose.
    assert_eq!(app.claim("local", "other", "r").await, ClaimResponse::Done);

    sqlx::raw_sql("DROP TRIGGER lose_claims ON tasks")
        .execute(app.pool())
        .await
        .unwrap();
    app.claim_assigned("local", "local-1cpu", "r").await;
}

#[tokio::test]
async fn of_two_claims_reading_the_same_version_exactly_one_wins() {
    let app = TestApp::new().await;
    app.start_run(&json!({
        "ruby_version": "3.4.7", "runs_per_instance_type": 1, "run_id": 7, "local": ["only"]
    }))
    .await;
    let mut first = PgConnection::connect(&app.database.url).await.unwrap();
    let mut second = PgConnection::connect(&app.database.url).await.unwrap();

    // Both read the one pending task at the same version.
    let read_first = tasks::get_claim_candidates(&mut first, Provider::Local, "only", 5)
        .await
        .unwrap();
    let read_second = tasks::get_claim_candidates(&mut second, Provider::Local, "only", 5)
        .await
        .unwrap();
    assert_eq!(read_first, read_second);
    assert_eq!(read_first.len(), 1);
    let candidate = read_first[0];

    // The first updates inside an open transaction, so it holds the row.
    let mut tx = first.begin().await.unwrap();
    let won = tasks::update_task_claimed(&mut *tx, &[candidate], "runner-1")
        .await
        .unwrap();
    assert_eq!(
        won.as_ref().map(|t| t.task.lock_version),
        Some(candidate.lock_version + 1)
    );

    // The second's compare-and-set skips the row being written instead of waiting for it...
    let skipped = tasks::update_task_claimed(&mut second, &[candidate], "runner-2")
        .await
        .unwrap();
    assert!(skipped.is_none());

    // ...and once the first commits, finds the version changed and updates nothing.
    tx.commit().await.unwrap();
    let lost = tasks::update_task_claimed(&mut second, &[candidate], "runner-2")
        .await
        .unwrap();
    assert!(lost.is_none());

    let task = tasks::get_task(&mut first, candidate.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(task.runner_id.as_deref(), Some("runner-1"));
    assert_eq!(task.lock_version, 1);

    // A compare-and-set with the old version also loses when nothing else is in flight.
    assert!(
        tasks::update_task_claimed(&mut first, &[candidate], "runner-3")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn claim_bodies_are_validated() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let cases = [
        json!({"instance_type": "local-1cpu", "runner_id": "r"}),
        json!({"provider": "gcp", "instance_type": "n2", "runner_id": "r"}),
        json!({"provider": "local", "runner_id": "r"}),
        json!({"provider": "local", "instance_type": "local-1cpu"}),
        json!({"provider": "local", "instance_type": "local-1cpu", "runner_id": 5}),
    ];
    let mut messages = Vec::new();
    for body in cases {
        let response = app.post("/tasks/claim", &body).await;
        messages
            .push(json!({"body": body, "error": response.expect_error(StatusCode::BAD_REQUEST)}));
    }
    insta::assert_json_snapshot!(messages);
}

#[tokio::test]
async fn a_claim_whose_urls_cannot_be_signed_gives_the_task_back() {
    let mut app = TestApp::new().await;
    app.start_run(&local_config()).await;
    // A lifetime beyond S3's week makes signing fail.
    let unsignable = orchestrator::Presigner::new(
        app.bucket.server.client(),
        &app.bucket.name,
        Duration::from_secs(8 * 24 * 3600),
    );
    let working = app.router.clone();
    app.router = orchestrator::create_app(orchestrator::AppState::new(
        app.pool().clone(),
        unsignable,
        orchestrator::AppConfig {
            api_key: crate::harness::API_KEY.parse().unwrap(),
            claim_retry_after_secs: RETRY_AFTER,
        },
    ));
    let response = app
        .post(
            "/tasks/claim",
            &json!({"provider": "local", "instance_type": "local-1cpu", "runner_id": "r"}),
        )
        .await;
    response.expect_error(StatusCode::INTERNAL_SERVER_ERROR);
    let counts = app.get("/run").await.json()["tasks"].clone();
    assert_eq!(counts["pending"], 4, "{counts}");

    app.router = working;
    let (task, _) = app.claim_assigned("local", "local-1cpu", "r").await;
    assert_eq!(task.run, 1);
}

#[tokio::test]
async fn a_claim_takes_the_first_candidate_still_at_its_version() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let candidates = tasks::get_claim_candidates(app.pool(), Provider::Local, "local-1cpu", 5)
        .await
        .unwrap();
    assert_eq!(candidates.len(), 2);
    // Another runner wins the first candidate after it was read.
    let (first, _) = app.claim_assigned("local", "local-1cpu", "other").await;
    assert_eq!(first.id, candidates[0].id.0);
    let claimed = tasks::update_task_claimed(app.pool(), &candidates, "me")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.task.id, candidates[1].id);
    assert_eq!(claimed.task.runner_id.as_deref(), Some("me"));
    assert_eq!(claimed.run_ruby_version, "3.4.7");
    assert!(
        tasks::update_task_claimed(app.pool(), &candidates, "me-again")
            .await
            .unwrap()
            .is_none()
    );
}
