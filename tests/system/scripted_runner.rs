//! A runner played by the test, over the same HTTP API and presigned URLs as the real one,
//! so a test decides which task completes, fails or hangs.

use std::time::Duration;

use local_stack::LocalStack;
use protocol::{
    ClaimRequest, ClaimResponse, ClaimedTask, CompleteRequest, ErrorType, FailRequest,
    PresignedUrls, Provider, RunStatus, archive, layout,
};
use serde_json::json;

/// A runner played by the test, over the same HTTP API and presigned URLs as the real one.
/// It claims and reports with the runner key; it reads and stops the run (as the operator
/// would) with the operator key.
pub struct ScriptedRunner {
    client: reqwest::Client,
    url: String,
    api_key: String,
    runner_api_key: String,
}

impl ScriptedRunner {
    /// A runner for `stack`.
    pub fn new(stack: &LocalStack) -> Self {
        Self {
            client: reqwest::Client::new(),
            url: stack.orchestrator_url.clone(),
            api_key: stack.api_key.clone(),
            runner_api_key: stack.runner_api_key.clone(),
        }
    }

    /// Waits for the master script to have started a run; returns its status.
    pub async fn wait_for_run(&self) -> RunStatus {
        for _ in 0..300 {
            let response = self
                .client
                .get(format!("{}/run", self.url))
                .bearer_auth(&self.api_key)
                .send()
                .await
                .unwrap();
            if response.status() == 200 {
                return response.json().await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the master script did not start a run");
    }

    /// Claims a task of `instance_type`.
    pub async fn claim(&self, instance_type: &str) -> (ClaimedTask, PresignedUrls) {
        let request = ClaimRequest {
            provider: Provider::Local,
            instance_type: instance_type.to_owned(),
            runner_id: format!("scripted-{instance_type}"),
        };
        let response = self.post("/tasks/claim", &json!(request)).await;
        match serde_json::from_value(response).unwrap() {
            ClaimResponse::Assigned {
                task,
                presigned_urls,
            } => (task, presigned_urls),
            other => panic!("expected a task of {instance_type}, got {other:?}"),
        }
    }

    /// Uploads a result archive like the runner's and reports the task complete.
    pub async fn complete(&self, task: &ClaimedTask, urls: &PresignedUrls) {
        self.upload_result(task, urls).await;
        self.report_complete(task).await;
    }

    /// Uploads a result archive like the runner's.
    pub async fn upload_result(&self, task: &ClaimedTask, urls: &PresignedUrls) {
        let report = "interp: ruby 3.1.2p20\n\n----------  ------------\nbench       interp (ms)\nfib         10.0 ± 1.0%\n----------  ------------\n";
        let meta = json!({
            "run_id": task.run_id, "task_id": task.id, "provider": "local", "instance_type": task.instance_type,
            "run": task.run, "runner_id": format!("scripted-{}", task.instance_type), "ruby_version": task.ruby_version,
            "ruby_description": "ruby 3.1.2p20", "started_at": "2026-11-28T10:00:00Z", "finished_at": "2026-11-28T10:01:00Z",
        });
        let archive = archive::pack(
            &[
                (
                    layout::OUTPUT_TXT,
                    format!("Running benchmark \"fib\" (1/1)\n{report}").as_bytes(),
                ),
                (layout::RUBY_BENCH_TXT, report.as_bytes()),
                (
                    layout::RUBY_BENCH_JSON,
                    b"{\"metadata\": {}, \"raw_data\": {}}",
                ),
                (
                    layout::RUBY_BENCH_CSV,
                    b"bench,interp (ms)\nfib,10.0 \xc2\xb1 1.0%\n",
                ),
                (layout::META_JSON, meta.to_string().as_bytes()),
            ],
            0,
        );
        self.upload(&urls.result, archive).await;
    }

    /// Reports the task complete with its issued key.
    pub async fn report_complete(&self, task: &ClaimedTask) {
        let request = CompleteRequest {
            runner_id: format!("scripted-{}", task.instance_type),
            s3_result_key: layout::task_result_key(task.run_id, task.id),
        };
        self.post(&format!("/tasks/{}/complete", task.id), &json!(request))
            .await;
    }

    /// Uploads an error archive like the runner's and reports the task failed.
    pub async fn fail(&self, task: &ClaimedTask, urls: &PresignedUrls) {
        let error = json!({ "error_type": ErrorType::RubyBenchFailed, "error_message": "no report came out", "exit_code": 2 });
        let archive = archive::pack(
            &[
                (layout::ERROR_JSON, error.to_string().as_bytes()),
                (layout::OUTPUT_TXT, b"Running benchmark \"fib\" (1/1)\n"),
            ],
            0,
        );
        self.upload(&urls.error, archive).await;
        let request = FailRequest {
            runner_id: format!("scripted-{}", task.instance_type),
            error_type: ErrorType::RubyBenchFailed.to_string(),
            error_message: "no report came out".into(),
            s3_error_key: Some(layout::task_error_key(task.run_id, task.id)),
            debug_mode: Some(false),
        };
        self.post(&format!("/tasks/{}/fail", task.id), &json!(request))
            .await;
    }

    /// Ends the run early, as the dashboard button or a script does.
    pub async fn stop_run(&self) {
        self.post("/run/stop", &json!(null)).await;
    }

    async fn post(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let request = self.client.post(format!("{}{path}", self.url)).bearer_auth(
            if path.starts_with("/tasks/") {
                &self.runner_api_key
            } else {
                &self.api_key
            },
        );
        let request = if body.is_null() {
            request
        } else {
            request.json(body)
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "POST {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    async fn upload(&self, url: &str, archive: Vec<u8>) {
        let response = self.client.put(url).body(archive).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "upload: {}",
            response.status()
        );
    }
}
