//! `serve`, as the binary runs it: settings in, migrations applied, API on a real port.

use std::time::Duration;

use clap::Parser;
use orchestrator::Settings;
use serde_json::json;
use test_support::fresh_database;

use crate::harness::{API_KEY, RUNNER_KEY, local_config};

#[tokio::test]
async fn serve_applies_migrations_and_answers() {
    let database = fresh_database().await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let settings = Settings::try_parse_from([
        "orchestrator",
        "--database-url",
        &database.url,
        "--api-key",
        API_KEY,
        "--runner-api-key",
        RUNNER_KEY,
        "--listen-addr",
        &format!("127.0.0.1:{port}"),
        "--s3-bucket",
        "unused",
        "--s3-endpoint-url",
        "http://127.0.0.1:9",
        "--heartbeat-timeout-secs",
        "1",
        "--heartbeat-check-interval-secs",
        "1",
    ])
    .unwrap();
    let server = tokio::spawn(orchestrator::serve(settings));

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut healthy = false;
    for _ in 0..100 {
        if let Ok(response) = client.get(format!("{base}/health")).send().await {
            assert_eq!(response.status(), reqwest::StatusCode::OK);
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "the server did not answer /health");

    let started = client
        .post(format!("{base}/run/start"))
        .bearer_auth(API_KEY)
        .body(local_config().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), reqwest::StatusCode::CREATED);
    let run = client
        .get(format!("{base}/run"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = run.json().await.unwrap();
    assert_eq!(
        body["tasks"],
        json!({"total": 4, "pending": 4, "claimed": 0, "completed": 0, "failed": 0})
    );

    // The heartbeat checker that `serve` spawns fails a claimed task that goes silent.
    // Claimed in the database: a claim over HTTP would need AWS credentials to presign.
    sqlx::query(
        "UPDATE tasks SET state = 'claimed', runner_id = 'r', claimed_at = now(), \
         last_heartbeat_at = now(), lock_version = 1 WHERE id = (SELECT min(id) FROM tasks)",
    )
    .execute(&database.pool().await)
    .await
    .unwrap();
    let mut failed = false;
    for _ in 0..100 {
        let body: serde_json::Value = client
            .get(format!("{base}/run"))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if body["tasks"]["failed"] == 1 {
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        failed,
        "the silent task was not failed by the periodic check"
    );
    server.abort();
}
