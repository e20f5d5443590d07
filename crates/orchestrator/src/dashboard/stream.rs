//! `GET /dashboard/stream`: live updates as Turbo Streams over server-sent events.
//!
//! Triggers on `runs` and `tasks` notify the Postgres channel [`CHANNEL`] on every change. One
//! `PgListener` per process (started by the first stream) forwards the notifications to a
//! broadcast channel; each open stream then renders the dashboard's parts again and sends them
//! as one unnamed event (Turbo ignores named events) of `<turbo-stream action="replace">`
//! elements. Bursts of changes are folded into one render ([`COALESCE_DELAY`]); comments keep
//! idle connections open through proxies ([`KEEP_ALIVE_INTERVAL`]).

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{Mutex, OwnedSemaphorePermit, broadcast};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::AppState;
use crate::dashboard::html::DashboardError;
use crate::dashboard::session::OperatorSession;
use crate::dashboard::view::{self, DashboardView};
use crate::db::sessions;

/// The Postgres channel the triggers of `migrations/0002_dashboard.sql` notify.
pub const CHANNEL: &str = "rcb_dashboard";

/// How many event streams may be open at once; more answer 503. Each holds no database
/// connection of its own, but renders the dashboard on every change.
pub const MAX_STREAMS: usize = 32;

/// How long a stream waits after a change for more before rendering: an early stop or the
/// start of a run changes many rows in a few statements.
pub const COALESCE_DELAY: Duration = Duration::from_millis(200);

/// How often a stream renders without a change, so that heartbeat ages stay current. Runners
/// send heartbeats every 30 seconds, so ages are shown to that grain anyway.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// How often an idle stream sends a comment so that proxies keep the connection open.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// How long the forwarder waits after losing the database connection before listening again.
const RELISTEN_DELAY: Duration = Duration::from_secs(1);

/// How many notifications the broadcast channel buffers for a slow stream; a stream that falls
/// behind just renders once.
const BROADCAST_CAPACITY: usize = 64;

/// The Turbo Stream replacements of the dashboard's live parts.
#[derive(Template)]
#[template(path = "dashboard/stream.html")]
pub struct StreamTemplate {
    /// What the page shows.
    pub view: DashboardView,
    /// The session's CSRF token, for the stop form.
    pub csrf_token: String,
}

/// Forwards database notifications (run ids) to every open stream.
#[derive(Debug)]
pub struct Notifier {
    sender: broadcast::Sender<i64>,
    listener: Mutex<Option<JoinHandle<()>>>,
}

impl Default for Notifier {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(BROADCAST_CAPACITY).0,
            listener: Mutex::new(None),
        }
    }
}

impl Notifier {
    /// A receiver of changes, starting the database listener if it is not running.
    pub async fn subscribe(&self, db: &PgPool) -> anyhow::Result<broadcast::Receiver<i64>> {
        let mut listener = self.listener.lock().await;
        if listener.as_ref().is_none_or(JoinHandle::is_finished) {
            let mut pg_listener = PgListener::connect_with(db).await?;
            pg_listener.listen(CHANNEL).await?;
            *listener = Some(tokio::spawn(forward_notifications(
                pg_listener,
                self.sender.clone(),
            )));
        }
        Ok(self.sender.subscribe())
    }
}

async fn forward_notifications(mut listener: PgListener, sender: broadcast::Sender<i64>) {
    loop {
        match listener.recv().await {
            Ok(notification) => {
                // No receiver is fine: nobody is watching.
                let _ = sender.send(notification.payload().parse().unwrap_or_default());
            }
            Err(err) => {
                // `recv` reconnects on its next call; changes in between are lost, so every
                // stream renders once to catch up.
                tracing::warn!(error = %err, "the dashboard's database listener failed; listening again");
                let _ = sender.send(0);
                tokio::time::sleep(RELISTEN_DELAY).await;
            }
        }
    }
}

struct StreamState {
    app: AppState,
    session: OperatorSession,
    changes: broadcast::Receiver<i64>,
    refresh: Interval,
    first: bool,
    _permit: OwnedSemaphorePermit,
}

/// The event stream of a logged-in operator: the current state at once, then again after
/// every change, until the session ends or the server shuts down.
pub async fn stream_dashboard(
    State(state): State<AppState>,
    session: OperatorSession,
) -> Result<Response, DashboardError> {
    let permit = state
        .dashboard
        .streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            DashboardError::Refused(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{MAX_STREAMS} dashboards are open already: close some and reload this one"
                ),
            )
        })?;
    let changes = state.dashboard.notifier.subscribe(&state.db).await?;
    let mut refresh = tokio::time::interval_at(Instant::now() + REFRESH_INTERVAL, REFRESH_INTERVAL);
    refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let stream = futures::stream::unfold(
        StreamState {
            app: state,
            session,
            changes,
            refresh,
            first: true,
            _permit: permit,
        },
        next_event,
    );
    let sse = Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE_INTERVAL));
    let mut response = sse.into_response();
    // nginx and similar proxies would otherwise hold events back in their buffers.
    response.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    Ok(response)
}

async fn next_event(mut stream: StreamState) -> Option<(Result<Event, Infallible>, StreamState)> {
    if !stream.first {
        let shutdown = stream.app.dashboard.shutdown.clone();
        tokio::select! {
            change = stream.changes.recv() => {
                if let Err(RecvError::Closed) = change {
                    return None;
                }
            }
            _ = stream.refresh.tick() => {}
            _ = shutdown.cancelled() => return None,
        }
        tokio::time::sleep(COALESCE_DELAY).await;
        loop {
            match stream.changes.try_recv() {
                Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return None,
            }
        }
    }
    stream.first = false;
    match render(&stream).await {
        Ok(Some(html)) => Some((Ok(Event::default().data(html)), stream)),
        // The operator logged out (or the session expired): the stream ends.
        Ok(None) => None,
        Err(err) => {
            // The browser's EventSource connects again and gets a fresh stream.
            tracing::error!(error = ?err, "the dashboard stream failed");
            None
        }
    }
}

async fn render(stream: &StreamState) -> anyhow::Result<Option<String>> {
    let session = &stream.session;
    if sessions::get_session(&stream.app.db, &session.token_sha256)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let view = view::load_dashboard(&stream.app).await?;
    let html = StreamTemplate {
        view,
        csrf_token: session.csrf_token.clone(),
    }
    .render()?;
    Ok(Some(html))
}
