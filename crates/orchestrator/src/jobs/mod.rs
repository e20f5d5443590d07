//! Background work: the periodic checks (the orchestrator's hearing, heartbeat timeouts, types
//! without runners, archive builds) and the archive builder.
//!
//! [`run_periodic_checks`] is spawned by [`crate::serve`]; every part is also a plain async
//! function that tests call directly.

pub mod archive;
pub mod heartbeats;

use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::AppState;
use crate::db::{hearing, runs, tasks};

pub use archive::{
    ArchiveBuilds, build_if_finished, retake_orphaned_build, spawn_build_if_finished,
};
pub use heartbeats::check_heartbeats;

/// What the periodic checks do, and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// How often they run (`HEARTBEAT_CHECK_INTERVAL_SECS`).
    pub interval: Duration,
    /// How long a claimed task may be silent (`HEARTBEAT_TIMEOUT_SECS`).
    pub heartbeat_timeout: Duration,
    /// How long a provider and instance type with pending tasks may go without any runner
    /// (`NO_RUNNER_TIMEOUT_SECS`).
    pub no_runner_timeout: Duration,
}

impl Checks {
    /// The longest gap between two checks that still counts as listening all along: two
    /// intervals and a margin for a slow one. A longer gap means the process or its database
    /// was away ([`hearing::record_check`]).
    pub fn max_gap(&self) -> Duration {
        self.interval * 2 + Duration::from_secs(5)
    }
}

/// Runs a [`PeriodicCheck`] every interval, the first at once.
pub async fn run_periodic_checks(state: AppState, checks: Checks) {
    let mut ticker = tokio::time::interval(checks.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut check = PeriodicCheck::default();
    loop {
        ticker.tick().await;
        // A failure is logged by the check; the next one tries again.
        let _ = check.run(&state, &checks).await;
    }
}

/// The periodic checks of one process, and what one tells the next: whether it starts a new
/// listening stretch. The first does (the process was not listening before it started), and
/// so does the first to succeed after one failed: a check fails when the database is away,
/// and then runners' heartbeats could not be recorded either, however short the outage.
#[derive(Debug)]
pub struct PeriodicCheck {
    starts_stretch: bool,
}

impl Default for PeriodicCheck {
    fn default() -> Self {
        Self {
            starts_stretch: true,
        }
    }
}

impl PeriodicCheck {
    /// Runs [`check_once`]; a failure is logged and returned.
    pub async fn run(&mut self, state: &AppState, checks: &Checks) -> anyhow::Result<()> {
        let result = check_once(state, checks, self.starts_stretch).await;
        if let Err(err) = &result {
            tracing::error!(
                error = format!("{err:#}"),
                "the periodic check failed; the next one tries again, and silence counts from it"
            );
        }
        self.starts_stretch = result.is_err();
        result
    }
}

/// One periodic check: records that the orchestrator is listening (`new_stretch`, or a gap
/// since the last check, starts a new stretch), fails silent tasks, fails the pending tasks of types
/// no runner has been seen for, then takes care of the running run's archive: a build that
/// stopped without recording its end is taken up again, a finished run's is built (after
/// the backoff of a failed attempt).
pub async fn check_once(
    state: &AppState,
    checks: &Checks,
    new_stretch: bool,
) -> anyhow::Result<()> {
    let listening_since =
        hearing::record_check(&state.db, new_stretch, checks.max_gap().as_secs_f64()).await?;
    if new_stretch {
        tracing::info!(%listening_since, "listening: silence counts from now");
    }
    check_heartbeats(&state.db, checks.heartbeat_timeout).await?;
    let Some(run) = runs::get_running_run(&state.db).await? else {
        return Ok(());
    };
    for quiet in
        tasks::update_tasks_no_runner(&state.db, run.id, checks.no_runner_timeout.as_secs_f64())
            .await?
    {
        tracing::warn!(
            run_id = %run.id,
            provider = %quiet.provider,
            instance_type = quiet.instance_type,
            tasks = quiet.failed,
            "no runner of this type was seen: its pending tasks failed as no_runner"
        );
    }
    archive::retake_orphaned_build(state, &run).await?;
    spawn_build_if_finished(state, run.id);
    Ok(())
}
