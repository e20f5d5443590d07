//! `POST /run/start` and `GET /run`.

use axum::http::StatusCode;
use orchestrator::db::{RunId, runs, tasks};
use protocol::{ErrorType, RubyBenchSelection, RunStatus, layout};
use serde_json::{Value, json};

use crate::harness::{TestApp, local_config, redact_urls};

/// The seed's `POST /run/start` example, with a run id and a ruby-bench selection.
fn seed_config() -> Value {
    json!({
        "ruby_version": "3.4.7",
        "runs_per_instance_type": 3,
        "run_id": 1733945123,
        "aws": ["c8g.medium", "c7g.medium"],
        "azure": ["Standard_D2pls_v6"],
        "ruby_bench": {"benchmarks": ["fib", "/^liquid/"], "warmup": 2},
        "debug_mode": true
    })
}

#[tokio::test]
async fn start_run_creates_tasks_in_the_seed_order() {
    let app = TestApp::new().await;
    let response = app.post("/run/start", &seed_config()).await;
    assert_eq!(response.status, StatusCode::CREATED);
    insta::assert_json_snapshot!(response.json());

    // The resolved selection and debug mode are stored with the run.
    let run = runs::get_latest_run(app.pool()).await.unwrap().unwrap();
    assert_eq!(run.id, RunId(1733945123));
    assert!(run.debug_mode);
    let expected: RubyBenchSelection =
        serde_json::from_value(json!({"benchmarks": ["fib", "/^liquid/"], "warmup": 2})).unwrap();
    assert_eq!(run.ruby_bench.0, expected);
}

#[tokio::test]
async fn start_run_without_run_id_uses_unix_seconds() {
    let app = TestApp::new().await;
    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut config = local_config();
    config.as_object_mut().unwrap().remove("run_id");
    let started = app.start_run(&config).await;
    let after = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (before - 1..=after + 1).contains(&started.run_id),
        "{before} <= {} <= {after}",
        started.run_id
    );
    assert_eq!(started.tasks_created, 4);

    // A second run within the same second still gets an id of its own.
    runs::update_run_complete(app.pool(), RunId(started.run_id), "k")
        .await
        .unwrap();
    let second = app.start_run(&config).await;
    assert!(second.run_id > started.run_id);
}

#[tokio::test]
async fn start_run_conflicts_while_a_run_is_running_and_not_after() {
    let app = TestApp::new().await;
    let first = app.start_run(&local_config()).await;

    let mut other = local_config();
    other["run_id"] = json!(1733950000);
    let message = app
        .post("/run/start", &other)
        .await
        .expect_error(StatusCode::CONFLICT);
    assert_eq!(
        message,
        "run 1733945123 is still in progress: wait for it to complete or stop it"
    );
    // Check order: a bad body is a 400 even while a run is running.
    let message = app
        .post(
            "/run/start",
            &json!({"runs_per_instance_type": 1, "local": ["x"]}),
        )
        .await
        .expect_error(StatusCode::BAD_REQUEST);
    assert!(message.contains("ruby_version"), "{message}");

    // Once the first run is complete, a new one may start, but not with a used id.
    assert!(
        runs::update_run_complete(app.pool(), RunId(first.run_id), "k")
            .await
            .unwrap()
    );
    let message = app
        .post("/run/start", &local_config())
        .await
        .expect_error(StatusCode::CONFLICT);
    assert_eq!(
        message,
        "run 1733945123 already exists: send another \"run_id\" or leave it out"
    );
    let second = app.start_run(&other).await;
    assert_eq!(second.run_id, 1733950000);
    // Task ids are unique across runs.
    assert!(second.tasks[0].id > first.tasks.last().unwrap().id);
    // A finished run builds its archive in the background: let it end first.
    app.wait_for_jobs().await;
}

#[tokio::test]
async fn concurrent_starts_make_one_run() {
    let app = TestApp::new().await;
    let mut configs = Vec::new();
    for i in 0..8 {
        let mut config = local_config();
        config["run_id"] = json!(1733945123 + i);
        configs.push(config);
    }
    let responses =
        futures::future::join_all(configs.iter().map(|config| app.post("/run/start", config)))
            .await;
    let created = responses
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1);
    for response in responses.iter().filter(|r| r.status != StatusCode::CREATED) {
        response.expect_error(StatusCode::CONFLICT);
    }
    let run = runs::get_latest_run(app.pool()).await.unwrap().unwrap();
    assert_eq!(
        tasks::get_run_tasks(app.pool(), run.id)
            .await
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn start_run_rejects_invalid_configs() {
    let app = TestApp::new().await;
    let cases = [
        json!({"runs_per_instance_type": 3, "aws": ["c8g.medium"]}),
        json!({"ruby_version": "3.4.7", "runs_per_instance_type": 3, "aws": [], "azure": []}),
        json!({"ruby_version": "3.4.7", "runs_per_instance_type": 0, "aws": ["c8g.medium"]}),
        json!({"ruby_version": "3.4.7", "runs_per_instance_type": 1, "aws": ["a"], "local": ["a"]}),
        json!({"ruby_version": "3.4.7", "runs_per_instance_type": 1, "gcp": ["n2"]}),
        json!({"ruby_version": "3.4.7", "runs_per_instance_type": "3", "aws": ["c8g.medium"]}),
        json!({"ruby_version": "3.4.7", "runs_per_instance_type": 1, "local": ["x"], "run_id": -5}),
        json!({"ruby_version": "3.4.7", "runs_per_instance_type": 1, "local": ["x"],
               "ruby_bench": {"modes": ["jit"]}}),
        json!({"ruby_version": "3.4.7", "runs_per_instance_type": 50000, "local": ["a", "b", "c"]}),
        json!([]),
    ];
    let mut messages = Vec::new();
    for config in cases {
        let response = app.post("/run/start", &config).await;
        messages.push(json!({
            "config": config,
            "error": response.expect_error(StatusCode::BAD_REQUEST),
        }));
    }
    insta::assert_json_snapshot!(messages);
    assert!(runs::get_latest_run(app.pool()).await.unwrap().is_none());
}

#[tokio::test]
async fn get_run_is_404_before_any_run() {
    let app = TestApp::new().await;
    let message = app.get("/run").await.expect_error(StatusCode::NOT_FOUND);
    assert_eq!(message, "no run has been started: POST /run/start first");
}

#[tokio::test]
async fn get_run_counts_tasks_by_state() {
    let app = TestApp::new().await;
    app.start_run(&local_config()).await;
    let (claimed, _) = app.claim_assigned("local", "local-1cpu", "r-1").await;
    let (completed, _) = app.claim_assigned("local", "local-1cpu", "r-2").await;
    let (failed, _) = app.claim_assigned("local", "local-2cpu", "r-3").await;
    let key = layout::task_result_key(completed.run_id, completed.id);
    let ok = app
        .post(
            &format!("/tasks/{}/complete", completed.id),
            &json!({"runner_id": "r-2", "s3_result_key": key}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let ok = app
        .post(
            &format!("/tasks/{}/fail", failed.id),
            &json!({"runner_id": "r-3", "error_type": ErrorType::RubyBenchFailed, "error_message": "boom"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_ne!(claimed.id, completed.id);

    let response = app.get("/run").await;
    assert_eq!(response.status, StatusCode::OK);
    let body = response.json();
    let status: RunStatus = serde_json::from_value(body.clone()).unwrap();
    let age = time::OffsetDateTime::now_utc() - status.created_at;
    assert!(
        age.whole_seconds().abs() < 60,
        "created_at is {}",
        status.created_at
    );
    insta::assert_json_snapshot!(body, {".created_at" => "[timestamp]"});
    // The last change finished the run: its archive build must end before the app goes.
    app.wait_for_jobs().await;
}

#[tokio::test]
async fn get_run_of_a_complete_run_has_a_working_gzip_url() {
    let app = TestApp::new().await;
    let started = app.start_run(&local_config()).await;
    let key = layout::run_archive_key(started.run_id);
    app.bucket
        .server
        .client()
        .put_object()
        .bucket(&app.bucket.name)
        .key(&key)
        .body(b"archive bytes".to_vec().into())
        .send()
        .await
        .unwrap();
    runs::update_run_complete(app.pool(), RunId(started.run_id), &key)
        .await
        .unwrap();

    let mut body = app.get("/run").await.json();
    let url = body["gzip_url"].as_str().unwrap().to_owned();
    let downloaded = reqwest::get(&url).await.unwrap();
    assert_eq!(downloaded.status(), reqwest::StatusCode::OK);
    assert_eq!(downloaded.bytes().await.unwrap().as_ref(), b"archive bytes");

    redact_urls(&mut body, &app);
    insta::assert_json_snapshot!(body, {
        ".created_at" => "[timestamp]",
        ".completed_at" => "[timestamp]",
    });

    // A complete run tells every claimer it is done.
    assert_eq!(
        app.claim("local", "local-1cpu", "r-1").await,
        protocol::ClaimResponse::Done
    );
    // A finished run builds its archive in the background: let it end first.
    app.wait_for_jobs().await;
}
