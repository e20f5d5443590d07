//! The test orchestrator: the app the orchestrator binary serves, on a fresh database and
//! bucket, called in-process or served on 127.0.0.1. One builder makes it for the orchestrator's
//! API tests, the runner's tests and the benchmarks:
//!
//! ```text
//! let app = TestOrchestrator::builder().api_key(API_KEY).build().await;   // in-process
//! let served = TestOrchestrator::builder().pool_size(8).serve().await;    // on 127.0.0.1
//! ```
//!
//! Dropping it checks that the test left no background job behind: no archive build still
//! running, none that crashed (a run left `building` with no build running, or `failed`), and
//! that the periodic checks and the server, when it started them, were still alive.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use orchestrator::{AppConfig, AppState, MIGRATOR, Presigner, create_app};
use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::{Connection, PgPool};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{TestBucket, TestDatabase, fresh_bucket, fresh_database};

/// The operator key (`API_KEY`) of a test orchestrator unless the builder is given another.
pub const DEFAULT_API_KEY: &str = "test-api-key-0123456789";

/// The runner key (`RUNNER_API_KEY`) of a test orchestrator unless the builder is given
/// another.
pub const DEFAULT_RUNNER_KEY: &str = "test-runner-key-0123456789";

/// How long [`TestOrchestrator::wait_for_jobs`] waits for background jobs to end.
const JOBS_TIMEOUT: Duration = Duration::from_secs(60);

/// Extra routes merged into the app, made from its state (the benchmarks' reference claims).
type RoutesFn = Box<dyn FnOnce(&AppState) -> Router + Send>;

/// Builds a [`TestOrchestrator`]: pool size, settings, extra routes, periodic checks, then
/// [`build`](Self::build) (in-process) or [`serve`](Self::serve) (on 127.0.0.1).
pub struct TestOrchestratorBuilder {
    pool_size: u32,
    api_key: String,
    runner_key: String,
    claim_retry_after_secs: u64,
    presign_ttl: Duration,
    routes: Option<RoutesFn>,
    periodic_checks: Option<orchestrator::jobs::Checks>,
    database: Option<TestDatabase>,
    bucket: Option<TestBucket>,
}

/// An orchestrator app on its own database (migrated) and bucket.
pub struct TestOrchestrator {
    /// The router, called in-process (and what [`serve`](TestOrchestratorBuilder::serve)
    /// serves).
    pub router: Router,
    /// The state the router was built with.
    pub state: AppState,
    /// The test's database.
    pub database: TestDatabase,
    /// The test's bucket on s3-local.
    pub bucket: TestBucket,
    server: Option<Server>,
    checks: Option<JoinHandle<()>>,
    unfinished_archive_expected: AtomicBool,
}

/// The app served on a fixed 127.0.0.1 address that survives a stop and a restart.
struct Server {
    address: SocketAddr,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Default for TestOrchestratorBuilder {
    fn default() -> Self {
        Self {
            pool_size: 10,
            api_key: DEFAULT_API_KEY.to_owned(),
            runner_key: DEFAULT_RUNNER_KEY.to_owned(),
            claim_retry_after_secs: 1,
            presign_ttl: Duration::from_secs(600),
            routes: None,
            periodic_checks: None,
            database: None,
            bucket: None,
        }
    }
}

impl TestOrchestratorBuilder {
    /// Database connections of the app's pool (default 10).
    pub fn pool_size(mut self, connections: u32) -> Self {
        self.pool_size = connections;
        self
    }

    /// The operator key of `Authorization: Bearer <key>` (default [`DEFAULT_API_KEY`]).
    pub fn api_key(mut self, key: &str) -> Self {
        self.api_key = key.to_owned();
        self
    }

    /// The runner key of `Authorization: Bearer <key>` (default [`DEFAULT_RUNNER_KEY`]).
    pub fn runner_key(mut self, key: &str) -> Self {
        self.runner_key = key.to_owned();
        self
    }

    /// The `retry_after_seconds` of a claim answered with `wait` (default 1).
    pub fn claim_retry_after_secs(mut self, seconds: u64) -> Self {
        self.claim_retry_after_secs = seconds;
        self
    }

    /// How long presigned URLs live (default 10 minutes).
    pub fn presign_ttl(mut self, ttl: Duration) -> Self {
        self.presign_ttl = ttl;
        self
    }

    /// Routes merged into the app, made from its state.
    pub fn routes(mut self, routes: impl FnOnce(&AppState) -> Router + Send + 'static) -> Self {
        self.routes = Some(Box::new(routes));
        self
    }

    /// Runs the periodic checks `serve` runs (the hearing, heartbeat timeouts, types without
    /// runners, archive builds) every `interval`, failing tasks silent for `timeout`, until
    /// the orchestrator is dropped. Types without runners fail after the default
    /// `NO_RUNNER_TIMEOUT_SECS` unless [`Self::no_runner_timeout`] says otherwise.
    pub fn periodic_checks(mut self, interval: Duration, timeout: Duration) -> Self {
        let no_runner_timeout = self.periodic_checks.map_or(
            Duration::from_secs(orchestrator::settings::DEFAULT_NO_RUNNER_TIMEOUT_SECS),
            |checks| checks.no_runner_timeout,
        );
        self.periodic_checks = Some(orchestrator::jobs::Checks {
            interval,
            heartbeat_timeout: timeout,
            no_runner_timeout,
        });
        self
    }

    /// How long the periodic checks let a type with pending tasks go without runners; call
    /// after [`Self::periodic_checks`].
    pub fn no_runner_timeout(mut self, timeout: Duration) -> Self {
        let checks = self
            .periodic_checks
            .as_mut()
            .expect("no_runner_timeout is set after periodic_checks");
        checks.no_runner_timeout = timeout;
        self
    }

    /// Uses an existing database instead of a fresh one (migrations are applied again; they
    /// are idempotent).
    pub fn database(mut self, database: TestDatabase) -> Self {
        self.database = Some(database);
        self
    }

    /// Uses an existing bucket instead of a fresh one.
    pub fn bucket(mut self, bucket: TestBucket) -> Self {
        self.bucket = Some(bucket);
        self
    }

    /// The app, called in-process.
    pub async fn build(self) -> TestOrchestrator {
        let database = match self.database {
            Some(database) => database,
            None => fresh_database().await,
        };
        let pool = PgPoolOptions::new()
            .max_connections(self.pool_size)
            .connect(&database.url)
            .await
            .unwrap_or_else(|err| panic!("failed to connect to {}: {err}", database.name));
        MIGRATOR.run(&pool).await.expect("migrations apply");
        let bucket = match self.bucket {
            Some(bucket) => bucket,
            None => fresh_bucket().await,
        };
        let presigner = Presigner::new(
            bucket.server.client(),
            bucket.server.credentials(),
            &bucket.name,
            self.presign_ttl,
        );
        let state = AppState::new(
            pool,
            presigner,
            AppConfig {
                keys: orchestrator::auth::ApiKeys::new(
                    self.api_key.parse().expect("a non-empty API key"),
                    self.runner_key.parse().expect("a non-empty runner key"),
                )
                .expect("two different keys"),
                claim_retry_after_secs: self.claim_retry_after_secs,
            },
        );
        let mut router = create_app(state.clone());
        if let Some(routes) = self.routes {
            router = router.merge(routes(&state));
        }
        let checks = self.periodic_checks.map(|checks| {
            tokio::spawn(orchestrator::jobs::run_periodic_checks(
                state.clone(),
                checks,
            ))
        });
        TestOrchestrator {
            router,
            state,
            database,
            bucket,
            server: None,
            checks,
            unfinished_archive_expected: AtomicBool::new(false),
        }
    }

    /// The app, served on a free 127.0.0.1 port.
    pub async fn serve(self) -> TestOrchestrator {
        let mut orchestrator = self.build().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port on 127.0.0.1");
        orchestrator.server = Some(Server {
            address: listener.local_addr().expect("a bound address"),
            running: None,
        });
        orchestrator.serve_on(listener);
        orchestrator
    }
}

impl TestOrchestrator {
    /// A builder with the defaults: 10 connections, [`DEFAULT_API_KEY`] and
    /// [`DEFAULT_RUNNER_KEY`], fresh database and
    /// bucket, no periodic checks.
    pub fn builder() -> TestOrchestratorBuilder {
        TestOrchestratorBuilder::default()
    }

    /// The database pool of the app.
    pub fn pool(&self) -> &PgPool {
        &self.state.db
    }

    /// The base URL it is served on; panics when it is called in-process only.
    pub fn url(&self) -> String {
        let server = self
            .server
            .as_ref()
            .expect("an orchestrator made with `serve`, not `build`");
        format!("http://{}", server.address)
    }

    fn serve_on(&mut self, listener: tokio::net::TcpListener) {
        let (stop, stopped) = oneshot::channel::<()>();
        let app = self.router.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    stopped.await.ok();
                })
                .await
                .expect("the test orchestrator's server failed");
        });
        self.server.as_mut().expect("served").running = Some((stop, task));
    }

    /// Stops serving: connections are refused until [`serve_again`](Self::serve_again).
    pub async fn stop_serving(&mut self) {
        let server = self.server.as_mut().expect("served");
        let (stop, task) = server.running.take().expect("serving");
        stop.send(()).ok();
        // Open keep-alive connections would keep a graceful shutdown waiting.
        task.abort();
        task.await.ok();
    }

    /// Serves again on the same address.
    pub async fn serve_again(&mut self) {
        let address = self.server.as_ref().expect("served").address;
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .unwrap_or_else(|err| panic!("failed to listen on {address} again: {err}"));
        self.serve_on(listener);
    }

    /// Waits for the background jobs that requests started (archive builds) to end.
    pub async fn wait_for_jobs(&self) {
        let jobs = &self.state.jobs;
        jobs.close();
        tokio::time::timeout(JOBS_TIMEOUT, jobs.wait())
            .await
            .unwrap_or_else(|_| panic!("background jobs ended within {JOBS_TIMEOUT:?}"));
        jobs.reopen();
    }

    /// Says that the test leaves a run's archive `building` or `failed` on purpose (set by
    /// hand), so that the drop check does not take it for a crashed build.
    pub fn expect_unfinished_archive(&self) {
        self.unfinished_archive_expected
            .store(true, Ordering::Relaxed);
    }

    /// What the test left behind: jobs still running, crashed jobs, a dead server.
    fn leftovers(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        // The periodic checks loop until aborted: ended means panicked.
        if let Some(checks) = self.checks.take() {
            if checks.is_finished() {
                problems.push(
                    "the periodic checks (heartbeat timeouts, archive builds) ended: they panicked"
                        .to_owned(),
                );
            }
            checks.abort();
        }
        if let Some((_, task)) = self
            .server
            .as_mut()
            .and_then(|server| server.running.take())
        {
            if task.is_finished() {
                problems.push("the server ended before the test did".to_owned());
            }
            task.abort();
        }
        let running = self.state.jobs.len();
        if running > 0 {
            problems.push(format!(
                "{running} background job(s) (archive builds) still running: call \
                 `wait_for_jobs().await` before the test ends"
            ));
        } else if !self.unfinished_archive_expected.load(Ordering::Relaxed)
            && !std::thread::panicking()
        {
            problems.extend(unfinished_archives(&self.database.url));
        }
        problems
    }
}

impl Drop for TestOrchestrator {
    fn drop(&mut self) {
        let problems = self.leftovers();
        // A test that failed already says why; a second panic would abort the process.
        if !problems.is_empty() && !std::thread::panicking() {
            panic!(
                "the test orchestrator on database {} was left with: {}",
                self.database.name,
                problems.join("; ")
            );
        }
    }
}

/// Runs whose archive build crashed: left `building` with no build running (the build
/// panicked or was cut off), or `failed` with no later build that succeeded. Read on a thread
/// and connection of its own: `drop` cannot wait on the test's runtime.
fn unfinished_archives(database_url: &str) -> Vec<String> {
    let url = database_url.to_owned();
    let read = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let mut connection = PgConnection::connect(&url).await?;
            let runs: Vec<(i64, String, Option<String>)> = sqlx::query_as(
                "SELECT id, archive_state, archive_error FROM runs \
                 WHERE archive_state IN ('building', 'failed') ORDER BY id",
            )
            .fetch_all(&mut connection)
            .await?;
            connection.close().await.ok();
            anyhow::Ok(runs)
        })
    });
    match read.join() {
        Ok(Ok(runs)) => runs
            .into_iter()
            .map(|(id, state, error)| match state.as_str() {
                "building" => format!(
                    "run {id}'s archive is still `building` with no build running: the build \
                     crashed (or call `expect_unfinished_archive()` when the test set it)"
                ),
                _ => format!(
                    "run {id}'s archive build failed: {}",
                    error.unwrap_or_default()
                ),
            })
            .collect(),
        Ok(Err(err)) => vec![format!(
            "the runs' archive states could not be read: {err:#}"
        )],
        Err(_) => vec!["reading the runs' archive states panicked".to_owned()],
    }
}
