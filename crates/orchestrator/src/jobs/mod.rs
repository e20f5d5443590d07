//! Background work: the heartbeat timeout checker and the archive builder.
//!
//! [`run_periodic_checks`] is spawned by [`crate::serve`]; every part is also a plain async
//! function that tests call directly.

pub mod archive;
pub mod heartbeats;

use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::AppState;
use crate::db::runs;

pub use archive::{build_if_finished, resume_archive_builds, spawn_build_if_finished};
pub use heartbeats::check_heartbeats;

/// Every `interval`: fails silent tasks, then starts the running run's archive if the run is
/// finished. The second step also retries a build that failed (S3 unreachable, say) and
/// catches a run whose last task ended while no trigger could run.
pub async fn run_periodic_checks(state: AppState, interval: Duration, timeout: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(err) = check_heartbeats(&state.db, timeout).await {
            tracing::error!(error = %err, "the heartbeat check failed");
        }
        match runs::get_running_run(&state.db).await {
            Ok(Some(run)) => spawn_build_if_finished(&state, run.id),
            Ok(None) => {}
            Err(err) => tracing::error!(error = %err, "failed to read the running run"),
        }
    }
}
