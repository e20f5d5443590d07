//! `TestApp`: the app the binary serves, on a fresh database and bucket (test-support's
//! `TestOrchestrator`), and the requests the tests send it.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use protocol::{ClaimResponse, ClaimedTask, PresignedUrls, StartRunResponse};
use serde_json::{Value, json};
use test_support::{TestOrchestrator, TestOrchestratorBuilder};
use tower::ServiceExt;

/// The operator key (`API_KEY`) of every test app.
pub const API_KEY: &str = "test-api-key-0123456789";

/// The runner key (`RUNNER_API_KEY`) of every test app.
pub const RUNNER_KEY: &str = "test-runner-key-0123456789";

/// The `retry_after_seconds` test apps answer `wait` with.
pub const RETRY_AFTER: u64 = 7;

/// How long test presigned URLs live.
const PRESIGN_TTL: Duration = Duration::from_secs(600);

/// A fresh orchestrator, called in-process: test-support's [`TestOrchestrator`] with this
/// suite's key and retry pause, and the requests the tests send.
pub struct TestApp(TestOrchestrator);

impl Deref for TestApp {
    type Target = TestOrchestrator;

    fn deref(&self) -> &TestOrchestrator {
        &self.0
    }
}

impl DerefMut for TestApp {
    fn deref_mut(&mut self) -> &mut TestOrchestrator {
        &mut self.0
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct TestResponse {
    /// The status code.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl TestResponse {
    /// The body as JSON; panics when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "{} body is not JSON ({err}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `error` message of a JSON error body, checking the house rules on the way.
    pub fn error(&self) -> String {
        let body = self.json();
        let message = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{} without an error message: {body}", self.status))
            .to_owned();
        assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
        assert!(
            !message.ends_with('.'),
            "message ends in a period: {message}"
        );
        assert!(!message.is_empty());
        assert_eq!(
            self.headers.get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        message
    }

    /// Asserts the status and returns the error message.
    #[track_caller]
    pub fn expect_error(&self, status: StatusCode) -> String {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self.error()
    }
}

impl TestApp {
    /// A new app on a fresh database and bucket.
    pub async fn new() -> Self {
        Self::with(TestOrchestrator::builder()).await
    }

    /// A new app made by `builder`, with this suite's key and retry pause.
    pub async fn with(builder: TestOrchestratorBuilder) -> Self {
        Self(Self::settings(builder).build().await)
    }

    /// A new app made by `builder`, also served on 127.0.0.1 (`url()`).
    pub async fn serve(builder: TestOrchestratorBuilder) -> Self {
        Self(Self::settings(builder).serve().await)
    }

    fn settings(builder: TestOrchestratorBuilder) -> TestOrchestratorBuilder {
        builder
            .api_key(API_KEY)
            .runner_key(RUNNER_KEY)
            .claim_retry_after_secs(RETRY_AFTER)
            .presign_ttl(PRESIGN_TTL)
    }

    /// Sends a request with the given `Authorization` header (if any) and body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        body: impl Into<Body>,
    ) -> TestResponse {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request.body(body.into()).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    /// A POST of JSON with the key its path takes: the runner key for `/tasks/…`, else the
    /// operator key.
    pub async fn post(&self, path: &str, body: &Value) -> TestResponse {
        self.send(Method::POST, path, Some(&key_for(path)), body.to_string())
            .await
    }

    /// A GET with the key its path takes.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Method::GET, path, Some(&key_for(path)), Body::empty())
            .await
    }

    /// Starts a run and returns the 201 body.
    pub async fn start_run(&self, config: &Value) -> StartRunResponse {
        let response = self.post("/run/start", config).await;
        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        serde_json::from_value(response.json()).unwrap()
    }

    /// A claim, answered 200.
    pub async fn claim(
        &self,
        provider: &str,
        instance_type: &str,
        runner_id: &str,
    ) -> ClaimResponse {
        let response = self
            .post(
                "/tasks/claim",
                &json!({"provider": provider, "instance_type": instance_type, "runner_id": runner_id}),
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        serde_json::from_value(response.json()).unwrap()
    }

    /// A claim that must be assigned.
    pub async fn claim_assigned(
        &self,
        provider: &str,
        instance_type: &str,
        runner_id: &str,
    ) -> (ClaimedTask, PresignedUrls) {
        match self.claim(provider, instance_type, runner_id).await {
            ClaimResponse::Assigned {
                task,
                presigned_urls,
            } => (task, presigned_urls),
            other => panic!("expected assigned, got {other:?}"),
        }
    }
}

/// The `Authorization` header of the key `path` takes: the runner key for the task endpoints,
/// the operator key for the rest.
pub fn key_for(path: &str) -> String {
    let key = if path.starts_with("/tasks/") {
        RUNNER_KEY
    } else {
        API_KEY
    };
    format!("Bearer {key}")
}

/// A small run config: run 1733945123, two local instance types, two runs each.
pub fn local_config() -> Value {
    json!({
        "ruby_version": "3.4.7",
        "runs_per_instance_type": 2,
        "run_id": 1733945123,
        "local": ["local-1cpu", "local-2cpu"]
    })
}

/// Replaces the endpoint, bucket and signature of presigned URLs in `value` with
/// placeholders, leaving the key, so snapshots stay stable.
pub fn redact_urls(value: &mut Value, app: &TestApp) {
    let prefix = format!("{}/{}/", app.bucket.server.endpoint, app.bucket.name);
    match value {
        Value::String(s) if s.starts_with(&prefix) => {
            let rest = &s[prefix.len()..];
            let (key, query) = rest.split_once('?').unwrap_or((rest, ""));
            assert!(query.contains("X-Amz-Signature="), "unsigned URL: {s}");
            *s = format!("[endpoint]/[bucket]/{key}?[signature]");
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact_urls(item, app)),
        Value::Object(map) => map.values_mut().for_each(|item| redact_urls(item, app)),
        _ => {}
    }
}

impl TestApp {
    /// Sets a task's last heartbeat `seconds` before now, by the database clock, and makes the
    /// orchestrator listen since at least as long ago: the clock moved on with it up.
    pub async fn age_heartbeat(&self, id: i64, seconds: i64) {
        sqlx::query(
            "UPDATE tasks SET last_heartbeat_at = now() - make_interval(secs => $2) WHERE id = $1",
        )
        .bind(id)
        .bind(seconds as f64)
        .execute(self.pool())
        .await
        .unwrap();
        self.listening_for_at_least(seconds).await;
    }

    /// Makes the orchestrator's hearing start `seconds` before now, by the database clock (a
    /// first periodic check then, and every one since).
    pub async fn listening_for(&self, seconds: i64) {
        sqlx::query(
            "INSERT INTO orchestrator_hearing (id, listening_since, last_check_at) \
             VALUES (true, now() - make_interval(secs => $1), now()) \
             ON CONFLICT (id) DO UPDATE SET listening_since = excluded.listening_since, \
                 last_check_at = excluded.last_check_at",
        )
        .bind(seconds as f64)
        .execute(self.pool())
        .await
        .unwrap();
    }

    /// [`Self::listening_for`], unless it has been listening longer already.
    async fn listening_for_at_least(&self, seconds: i64) {
        sqlx::query(
            "INSERT INTO orchestrator_hearing (id, listening_since, last_check_at) \
             VALUES (true, now() - make_interval(secs => $1), now()) \
             ON CONFLICT (id) DO UPDATE SET listening_since = \
                 least(orchestrator_hearing.listening_since, excluded.listening_since)",
        )
        .bind(seconds as f64)
        .execute(self.pool())
        .await
        .unwrap();
    }

    /// The run's `results.tar.gz`, downloaded through the `gzip_url` of `GET /run`.
    pub async fn download_archive(&self) -> Archive {
        let body = self.get("/run").await.json();
        assert_eq!(body["status"], "complete", "{body}");
        let url = body["gzip_url"].as_str().expect("a gzip_url").to_owned();
        let response = reqwest::get(&url).await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        Archive::read(&response.bytes().await.unwrap())
    }
}

/// PUTs `body` to a presigned URL, as a runner uploads its archive.
pub async fn upload(url: &str, body: Vec<u8>) {
    let response = reqwest::Client::new()
        .put(url)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        reqwest::StatusCode::OK,
        "upload to {url}"
    );
}

/// A flat `.tar.gz` of `(name, content)` files, as a runner packs `result.tar.gz`.
pub fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    protocol::archive::pack(files, 1_733_945_123)
}

/// The entries of a downloaded run archive.
#[derive(Debug)]
pub struct Archive {
    /// Directories, in archive order.
    pub dirs: Vec<String>,
    /// Files and their contents, by path.
    pub files: std::collections::BTreeMap<String, Vec<u8>>,
}

impl Archive {
    /// Reads a `.tar.gz` whole.
    pub fn read(bytes: &[u8]) -> Self {
        use std::io::Read;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        let mut dirs = Vec::new();
        let mut files = std::collections::BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            if entry.header().entry_type().is_dir() {
                dirs.push(path.trim_end_matches('/').to_owned());
            } else {
                let mut content = Vec::new();
                entry.read_to_end(&mut content).unwrap();
                assert!(
                    files.insert(path.clone(), content).is_none(),
                    "{path} twice"
                );
            }
        }
        Self { dirs, files }
    }

    /// The paths of every file.
    pub fn paths(&self) -> Vec<&str> {
        self.files.keys().map(String::as_str).collect()
    }

    /// A file's content as JSON.
    pub fn json(&self, path: &str) -> Value {
        let content = self
            .files
            .get(path)
            .unwrap_or_else(|| panic!("{path} not in {:?}", self.paths()));
        serde_json::from_slice(content).unwrap()
    }
}
