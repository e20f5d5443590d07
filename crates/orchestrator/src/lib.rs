//! The orchestrator service: takes a run config, hands its tasks to runners through optimistic
//! claims, records their heartbeats and results, and reports on the run.
//!
//! - [`router::create_app`] builds the HTTP app that the binary serves and the tests call.
//! - Layers: [`router`] → [`routes`] (handlers: parse, call, answer) → [`services`] (the claim
//!   algorithm) → [`db`] (the queries); [`error`] is the HTTP error type, [`s3`] the bucket.
//! - [`jobs`] holds the background work (heartbeat timeouts, the archive builder),
//!   [`lifecycle`] the run changes that more than one caller makes (ending a run early).
//! - [`dashboard`] is the operator's HTML dashboard (Turbo, live updates, "End run early").
//! - [`serve`] is the whole binary: migrations, the S3 clients, background jobs, the listener.

#![warn(missing_docs)]

pub mod auth;
pub mod dashboard;
pub mod db;
pub mod error;
pub mod extract;
pub mod jobs;
pub mod lifecycle;
pub mod router;
pub mod routes;
pub mod s3;
pub mod services;
pub mod settings;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use tokio_util::task::TaskTracker;

pub use router::create_app;
pub use s3::{Presigner, Storage};
pub use settings::{Secret, Settings};

/// The schema migrations, applied at start (forward-only).
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// How many database connections the server keeps at most. Postgres runs beside the
/// orchestrator on a 2-vCPU host, where more backends than about four per CPU only take turns
/// on the CPUs and stretch every statement (20 connections gave claims a p99 of 55 ms where 8
/// give 40 ms; see BENCHMARKS.md). Requests beyond wait for a connection in the pool. Once a
/// dashboard stream has opened, one of them is the dashboard's `LISTEN` connection for good.
pub const MAX_DB_CONNECTIONS: u32 = 8;

/// How long the server waits at start for the database to accept connections.
const DB_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database pool.
    pub db: PgPool,
    /// The bucket: presigned upload and download URLs, and the archive builder's reads and
    /// writes.
    pub storage: Storage,
    /// Background jobs started by requests (archive builds), so that they can be awaited.
    pub jobs: TaskTracker,
    /// The runs whose archive this process is building.
    pub archive_builds: jobs::ArchiveBuilds,
    /// Settings the handlers read.
    pub config: Arc<AppConfig>,
    /// The operator's dashboard: its password, live-update channel and open streams.
    pub dashboard: dashboard::DashboardState,
    /// Where claims of each instance type start their scan of pending tasks, and how many
    /// claims are being decided.
    pub claims: services::claim::ClaimState,
}

/// The settings handlers read, apart from the database and S3.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The operator's and the runners' keys of `Authorization: Bearer <key>`.
    pub keys: auth::ApiKeys,
    /// The `retry_after_seconds` of a claim answered with `wait`.
    pub claim_retry_after_secs: u64,
}

impl AppState {
    /// State from its parts. The bucket is read and written through the presigner's client
    /// until [`AppState::with_storage`] says otherwise.
    pub fn new(db: PgPool, presigner: Presigner, config: AppConfig) -> Self {
        let storage = Storage::new(presigner.client().clone(), presigner);
        Self {
            db,
            storage,
            jobs: TaskTracker::new(),
            archive_builds: jobs::ArchiveBuilds::default(),
            config: Arc::new(config),
            dashboard: dashboard::DashboardState::default(),
            claims: services::claim::ClaimState::default(),
        }
    }

    /// The same state, with the dashboard's operator password (`None` refuses every login).
    pub fn with_operator_password(mut self, password: Option<Secret>) -> Self {
        self.dashboard = dashboard::DashboardState::new(password);
        self
    }

    /// The same state, reading and writing the bucket through `storage`.
    pub fn with_storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }
}

/// Connects to the database, applies migrations, starts the periodic checks (the hearing,
/// heartbeat timeouts, types without runners, archive builds, also one a previous process left
/// unfinished) and serves the API until SIGINT or SIGTERM.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let db = connect_database(settings.database_url.expose()).await?;
    MIGRATOR
        .run(&db)
        .await
        .context("failed to apply database migrations")?;
    let presigner =
        Presigner::from_settings(&settings.s3, Duration::from_secs(settings.presign_ttl_secs))
            .await;
    let storage = Storage::from_settings(&settings.s3, presigner.clone()).await;
    let state = AppState::new(
        db,
        presigner,
        AppConfig {
            keys: auth::ApiKeys::new(settings.api_key.clone(), settings.runner_api_key.clone())
                .map_err(anyhow::Error::msg)?,
            claim_retry_after_secs: settings.claim_retry_after_secs,
        },
    )
    .with_storage(storage)
    .with_operator_password(settings.operator_password.clone());

    // The first check starts the orchestrator's hearing, then takes up an archive build that
    // a previous process left unfinished.
    let checks = tokio::spawn(jobs::run_periodic_checks(
        state.clone(),
        jobs::Checks {
            interval: Duration::from_secs(settings.heartbeat_check_interval_secs),
            heartbeat_timeout: Duration::from_secs(settings.heartbeat_timeout_secs),
            no_runner_timeout: Duration::from_secs(settings.no_runner_timeout_secs),
        },
    ));
    let listener = tokio::net::TcpListener::bind(settings.listen_addr)
        .await
        .with_context(|| format!("failed to listen on {}", settings.listen_addr))?;
    tracing::info!(address = %settings.listen_addr, "orchestrator listening");
    // Open dashboard event streams never end by themselves: end them on shutdown.
    let end_streams = state.dashboard.shutdown.clone();
    let served = axum::serve(listener, create_app(state))
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            end_streams.cancel();
        })
        .await
        .context("the server failed");
    // An archive build cut short here is taken up again at the next start.
    checks.abort();
    served
}

/// Connects to Postgres, retrying for a while: in the local stack and on the orchestrator host
/// the database container may still be starting.
async fn connect_database(url: &str) -> anyhow::Result<PgPool> {
    let deadline = tokio::time::Instant::now() + DB_CONNECT_TIMEOUT;
    loop {
        match PgPoolOptions::new()
            .max_connections(MAX_DB_CONNECTIONS)
            .connect(url)
            .await
        {
            Ok(pool) => return Ok(pool),
            Err(err) if tokio::time::Instant::now() >= deadline => {
                return Err(anyhow::Error::new(err).context(format!(
                    "failed to connect to the database at DATABASE_URL within {DB_CONNECT_TIMEOUT:?}"
                )));
            }
            Err(err) => {
                tracing::warn!(error = %err, "the database is not answering yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM (what `docker stop` sends).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("failed to install the SIGTERM handler");
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
}
