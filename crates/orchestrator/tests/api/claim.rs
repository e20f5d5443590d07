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
    // A finished run builds its archive in the background: let it end first.
    app.wait_for_jobs().await;
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
async fn a_claim_skips_a_task_another_claim_is_taking_and_never_takes_it_twice() {
    let app = TestApp::new().await;
    app.start_run(&json!({
        "ruby_version": "3.4.7", "runs_per_instance_type": 1, "run_id": 7, "local": ["only"]
    }))
    .await;
    let window = &tasks::CLAIM_WINDOWS[0];
    let mut first = PgConnection::connect(&app.database.url).await.unwrap();
    let mut second = PgConnection::connect(&app.database.url).await.unwrap();

    // The first claim takes the one task inside an open transaction, so it holds the row.
    let mut tx = first.begin().await.unwrap();
    let won = tasks::claim_task(
        &mut *tx,
        window,
        Provider::Local,
        "only",
        "runner-1",
        None,
        true,
    )
    .await
    .unwrap();
    assert_eq!(won.candidates, 1);
    let won = won.claimed.expect("the first claim wins");
    assert_eq!(won.task.lock_version, 1);

    // The second still reads the task as pending at version 0, but skips the row being
    // written instead of waiting for it: a lost round, not a second owner.
    let skipped = tasks::claim_task(
        &mut second,
        window,
        Provider::Local,
        "only",
        "runner-2",
        None,
        true,
    )
    .await
    .unwrap();
    assert_eq!(skipped.candidates, 1);
    assert!(skipped.claimed.is_none());

    // Once the first commits, nothing is pending.
    tx.commit().await.unwrap();
    let after = tasks::claim_task(
        &mut second,
        window,
        Provider::Local,
        "only",
        "runner-2",
        None,
        true,
    )
    .await
    .unwrap();
    assert_eq!(after.candidates, 0);
    assert!(after.claimed.is_none());

    let task = tasks::get_task(&mut first, won.task.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(task.runner_id.as_deref(), Some("runner-1"));
    assert_eq!(task.lock_version, 1);
}

#[tokio::test]
async fn a_claim_reads_from_its_start_and_reports_the_lowest_pending_task() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let window = &tasks::CLAIM_WINDOWS[0];
    let claim = |start| {
        tasks::claim_task(
            app.pool(),
            window,
            Provider::Local,
            "local-1cpu",
            "me",
            start,
            true,
        )
    };

    // From the lowest: run 1 of the type is taken, and was the lowest pending task read.
    let first = claim(None).await.unwrap();
    assert_eq!(first.candidates, 2);
    let taken = first.claimed.unwrap();
    assert_eq!(taken.task.run, 1);
    assert_eq!(taken.run_ruby_version, "3.4.7");
    let start = first.start.unwrap();
    assert_eq!(
        (start.run_id, start.run, start.id),
        (RunId(1733945123), 1, taken.task.id)
    );

    // From run 2 on, run 1 is not even read.
    let second = claim(Some(tasks::ClaimStart {
        run: 2,
        id: TaskId(0),
        ..start
    }))
    .await
    .unwrap();
    assert_eq!(second.candidates, 1);
    assert_eq!(second.claimed.unwrap().task.run, 2);

    // A start of another run is ignored: the scan is from the lowest, and finds nothing left.
    let pending = claim(Some(tasks::ClaimStart {
        run_id: RunId(1),
        run: 9,
        id: TaskId(99),
    }))
    .await
    .unwrap();
    assert_eq!(pending.candidates, 0);
    assert!(pending.start.is_none() && pending.claimed.is_none());
}

#[tokio::test]
async fn a_lone_runner_gets_runs_in_order_and_a_task_given_back_is_claimed_again() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let (run_1, _) = app.claim_assigned("local", "local-1cpu", "r").await;
    let (run_2, _) = app.claim_assigned("local", "local-1cpu", "r").await;
    assert_eq!((run_1.run, run_2.run), (1, 2));

    // Run 1 becomes pending again, below where the claims of its type now start reading.
    let claimed = tasks::get_task(app.pool(), TaskId(run_1.id))
        .await
        .unwrap()
        .unwrap();
    assert!(
        tasks::update_task_unclaimed(app.pool(), &claimed)
            .await
            .unwrap()
    );

    // The scan from the start finds nothing, looks again from the lowest and takes it.
    let (again, _) = app.claim_assigned("local", "local-1cpu", "r2").await;
    assert_eq!(again.id, run_1.id);
    let task = tasks::get_task(app.pool(), TaskId(run_1.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (task.runner_id.as_deref(), task.lock_version),
        (Some("r2"), 3)
    );
    assert_eq!(
        app.claim("local", "local-1cpu", "r").await,
        ClaimResponse::Done
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
        app.bucket.server.credentials(),
        &app.bucket.name,
        Duration::from_secs(8 * 24 * 3600),
    );
    let working = app.router.clone();
    app.router = orchestrator::create_app(orchestrator::AppState::new(
        app.pool().clone(),
        unsignable,
        orchestrator::AppConfig {
            keys: app.state.config.keys.clone(),
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
