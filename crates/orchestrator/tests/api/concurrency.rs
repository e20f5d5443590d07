//! 64 runners claiming over real HTTP at once.

use std::collections::HashSet;

use orchestrator::db::{RunId, tasks};
use protocol::{ClaimResponse, Provider, TaskStatus};
use serde_json::json;
use test_support::TestOrchestrator;

use crate::harness::{RUNNER_KEY, TestApp};

const CLAIMERS: usize = 64;
const TASKS: u64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_get_every_task_exactly_once() {
    let app = TestApp::serve(TestOrchestrator::builder().pool_size(32)).await;
    // The target instance type plus decoys: other types of the same provider, and another
    // provider (instance types are unique across providers, so the decoys differ by name too).
    app.start_run(&json!({
        "ruby_version": "3.4.7",
        "runs_per_instance_type": TASKS,
        "run_id": 1733945123,
        "local": ["target", "decoy-local"],
        "aws": ["decoy-aws"]
    }))
    .await;

    let client = reqwest::Client::new();
    let url = format!("{}/tasks/claim", app.url());
    let claimers = (0..CLAIMERS).map(|i| {
        let client = client.clone();
        let url = url.clone();
        tokio::spawn(async move {
            let mut claimed = Vec::new();
            let mut waits = 0;
            loop {
                let response = client
                    .post(&url)
                    .bearer_auth(RUNNER_KEY)
                    .json(&json!({"provider": "local", "instance_type": "target", "runner_id": format!("runner-{i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), reqwest::StatusCode::OK);
                match response.json::<ClaimResponse>().await.unwrap() {
                    ClaimResponse::Assigned { task, .. } => {
                        assert_eq!((task.provider, task.instance_type.as_str()), (Provider::Local, "target"));
                        claimed.push(task.id);
                    }
                    // A real runner sleeps `retry_after_seconds`; here, ask again at once.
                    ClaimResponse::Wait { .. } => waits += 1,
                    ClaimResponse::Done => return (claimed, waits),
                }
            }
        })
    });
    let results = futures::future::join_all(claimers).await;

    let mut all = Vec::new();
    let mut waits = 0;
    for result in results {
        let (claimed, claimer_waits) = result.unwrap();
        all.extend(claimed);
        waits += claimer_waits;
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), TASKS as usize, "{waits} waits");
    assert_eq!(unique.len(), TASKS as usize, "a task was assigned twice");

    let tasks = tasks::get_run_tasks(app.pool(), RunId(1733945123))
        .await
        .unwrap();
    for task in &tasks {
        let claimed = task.state == TaskStatus::Claimed;
        assert_eq!(
            claimed,
            task.instance_type == "target",
            "task {}",
            task.id.0
        );
        assert_eq!(claimed, unique.contains(&task.id.0));
        if claimed {
            assert_eq!(task.lock_version, 1, "task {} was claimed twice", task.id.0);
        }
    }
    // Everyone is told there is nothing left.
    assert_eq!(
        app.claim("local", "target", "late").await,
        ClaimResponse::Done
    );
}
