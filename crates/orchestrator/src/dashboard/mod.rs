//! The operator's dashboard: server-rendered HTML (askama) driven by Hotwire Turbo.
//!
//! - [`pages`]: `GET /` (the latest run, its tasks, past runs) and `GET /dashboard/runs/{id}`
//!   (a past run, shown in a Turbo Frame of the dashboard).
//! - [`login`]: the operator login with `OPERATOR_PASSWORD` and server-side [`session`]s.
//! - [`stop`]: "End run early", the same stop as `POST /run/stop` ([`crate::lifecycle`]).
//! - [`csrf`]: the Origin check and CSRF token every form that changes state goes through.
//! - [`stream`]: live updates as Turbo Streams over server-sent events, pushed by Postgres
//!   `LISTEN/NOTIFY` (triggers of `migrations/0002_dashboard.sql`).
//! - [`assets`]: turbo.js (embedded by `build.rs`, never checked in) and the stylesheet.
//! - [`html`]: the `HtmlTemplate` response wrapper and the dashboard's HTML errors.
//! - [`view`]: what the templates show, read from the database.

pub mod assets;
pub mod csrf;
pub mod html;
pub mod login;
pub mod pages;
pub mod session;
pub mod stop;
pub mod stream;
pub mod view;

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::settings::Secret;

/// What the dashboard keeps in [`crate::AppState`].
#[derive(Debug, Clone)]
pub struct DashboardState {
    /// The operator password; `None` refuses every login and says how to set it.
    pub operator_password: Option<Secret>,
    /// Fans database notifications out to the open event streams.
    pub notifier: Arc<stream::Notifier>,
    /// Bounds the number of open event streams ([`stream::MAX_STREAMS`]).
    pub streams: Arc<Semaphore>,
    /// Cancelled when the server shuts down, which ends the event streams (a graceful shutdown
    /// waits for open connections, and an event stream never ends by itself).
    pub shutdown: CancellationToken,
}

impl DashboardState {
    /// A dashboard with this operator password (or none).
    pub fn new(operator_password: Option<Secret>) -> Self {
        Self {
            operator_password,
            notifier: Arc::new(stream::Notifier::default()),
            streams: Arc::new(Semaphore::new(stream::MAX_STREAMS)),
            shutdown: CancellationToken::new(),
        }
    }
}

impl Default for DashboardState {
    fn default() -> Self {
        Self::new(None)
    }
}
