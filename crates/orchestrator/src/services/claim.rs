//! The claim service behind `POST /tasks/claim`: optimistic claims with a compare-and-set on
//! `lock_version`, in rounds of widening windows with random pauses, from a remembered start.
//!
//! A claim is one statement ([`tasks::claim_task`]): it reads pending candidates of the
//! runner's provider and instance type with their versions and takes the first one still at
//! its version, skipping a row another claim is writing at that moment rather than waiting for
//! it; losing means other runners took them first. After a lost round the next reads a wider
//! window, and from the third on it first waits a random moment (so claimers that collided do
//! not collide again in lockstep), a bounded number of times. Only when every attempt was lost
//! does it answer `wait`.
//!
//! Each scan starts where the last claim of that instance type found the lowest pending task
//! ([`ClaimState`]), so that it does not step over the index entries of every task claimed so
//! far; a scan that finds nothing from there looks again from the start before the answer is
//! `done`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use protocol::{ClaimRequest, ClaimedTask, PresignedUrls, Provider};
use rand::Rng;

use crate::AppState;
use crate::db::runs;
use crate::db::tasks::{self, CLAIM_WINDOWS, ClaimStart};
use crate::services;

/// How many rounds a claim tries before answering `wait`; rounds beyond the windows reuse
/// the widest.
const CLAIM_ROUNDS: usize = 4;

/// The longest random pause before a round from the third on, in milliseconds per round
/// after the second.
const MAX_JITTER_MS_PER_ROUND: u64 = 5;

/// What the claims of this process share: where the claims of each provider and instance
/// type start their scan (the lowest pending task the last claim read), and how many claims
/// are being decided right now. A start is only a hint, since a scan that finds nothing from it
/// looks again from the lowest task.
#[derive(Debug, Clone, Default)]
pub struct ClaimState {
    starts: Arc<Mutex<HashMap<(Provider, String), ClaimStart>>>,
    in_flight: Arc<AtomicUsize>,
}

/// More instance types than any run has; beyond, the hints are dropped and grow again.
const MAX_CLAIM_STARTS: usize = 10_000;

impl ClaimState {
    fn start(&self, provider: Provider, instance_type: &str) -> Option<ClaimStart> {
        let starts = self
            .starts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        starts.get(&(provider, instance_type.to_owned())).copied()
    }

    fn set_start(&self, provider: Provider, instance_type: &str, start: Option<ClaimStart>) {
        let mut starts = self
            .starts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = (provider, instance_type.to_owned());
        match start {
            Some(start) => {
                if starts.len() >= MAX_CLAIM_STARTS && !starts.contains_key(&key) {
                    starts.clear();
                }
                starts.insert(key, start);
            }
            None => {
                starts.remove(&key);
            }
        }
    }

    /// Forgets where claims of the type start, after a task of it went back to pending (it
    /// may be below the start).
    pub fn forget_start(&self, provider: Provider, instance_type: &str) {
        self.set_start(provider, instance_type, None);
    }

    /// Counts a claim as being decided until the guard is dropped; says whether it is the
    /// only one.
    fn enter(&self) -> (InFlight, bool) {
        let before = self.in_flight.fetch_add(1, Ordering::Relaxed);
        (InFlight(self.in_flight.clone()), before == 0)
    }
}

/// A claim being decided; see [`ClaimState::enter`].
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a claim came to.
#[derive(Debug, Clone)]
pub enum ClaimOutcome {
    /// The runner holds this task now; its archives go to these URLs.
    Assigned {
        /// The task, with what the runner needs of its run (boxed: the other outcomes are
        /// empty).
        task: Box<ClaimedTask>,
        /// Where its `result.tar.gz` and `error.tar.gz` go.
        presigned_urls: PresignedUrls,
    },
    /// Every round was lost to other claims: the runner should ask again shortly.
    Lost,
    /// Nothing of this provider and instance type is pending in the latest run, or the run
    /// is complete or stopped.
    Done,
    /// No run was ever started.
    NoRun,
}

/// Claims a pending task of the runner's provider and instance type for it: up to
/// [`CLAIM_ROUNDS`] claim statements of widening windows ([`CLAIM_WINDOWS`]) from the scan
/// start of the instance type, with a random pause before each from the third on.
pub async fn claim_task(state: &AppState, request: &ClaimRequest) -> anyhow::Result<ClaimOutcome> {
    let (provider, instance_type) = (request.provider, request.instance_type.as_str());
    let mut start = state.claims.start(provider, instance_type);
    // A lone claim takes the lowest task (a lone runner gets run 1 before run 2). Concurrent
    // claims all try candidates at random: the lowest is the one every claim would try first,
    // so it is mostly taken already, and a row claimed after the statement's snapshot costs
    // Postgres a re-check of the whole statement (EvalPlanQual) before it is passed over.
    let (_in_flight, lowest_first) = state.claims.enter();
    let mut round = 0;
    let mut looked_again = false;
    while round < CLAIM_ROUNDS {
        let window = &CLAIM_WINDOWS[round.min(CLAIM_WINDOWS.len() - 1)];
        let attempt = tasks::claim_task(
            &state.db,
            window,
            provider,
            instance_type,
            &request.runner_id,
            start,
            lowest_first,
        )
        .await
        .context("the claim statement failed")?;
        if attempt.candidates == 0 {
            if start.take().is_some() {
                // Nothing from the hint on: look again from the lowest task (a task given
                // back may be pending below it) before saying `done`.
                state.claims.set_start(provider, instance_type, None);
                continue;
            }
            // Nothing to claim in the latest run (or it is complete or stopped); `NoRun` only
            // when no run was ever started.
            let latest = runs::get_latest_run(&state.db)
                .await
                .context("failed to read the latest run")?;
            match latest {
                None => return Ok(ClaimOutcome::NoRun),
                // A run and its tasks are committed together, possibly between the claim
                // statement and this read: a run seen here has its tasks in the next
                // statement. Without this look a runner that asks as the run starts is told
                // `done` and ends.
                Some(_) if !looked_again => {
                    looked_again = true;
                    continue;
                }
                Some(_) => return Ok(ClaimOutcome::Done),
            }
        }
        start = attempt.start;
        state.claims.set_start(provider, instance_type, start);
        if let Some(claimed) = attempt.claimed {
            // The claim has no transaction around it (a transaction would cost round trips
            // and hold the row lock while the URLs are signed). Should signing fail, the claim
            // is given back, so the task stays pending for the next runner; it may be pending
            // below the scans' start now, so the start is forgotten.
            let presigned_urls = match services::tasks::presigned_urls(state, &claimed.task).await {
                Ok(urls) => urls,
                Err(err) => {
                    tasks::update_task_unclaimed(&state.db, &claimed.task)
                        .await
                        .context("failed to give back a claim whose URLs could not be signed")?;
                    state.claims.set_start(provider, instance_type, None);
                    return Err(err);
                }
            };
            tracing::info!(
                task_id = %claimed.task.id,
                runner_id = claimed.task.runner_id.as_deref(),
                "task claimed"
            );
            return Ok(ClaimOutcome::Assigned {
                task: Box::new(claimed.into()),
                presigned_urls,
            });
        }
        round += 1;
        // A lost first round only means a narrow window: the next is wider and goes at once.
        // After that, pause a random moment, so that claimers that collided do not collide
        // again in lockstep.
        if (2..CLAIM_ROUNDS).contains(&round) {
            let jitter = rand::rng().random_range(0..=MAX_JITTER_MS_PER_ROUND * (round as u64 - 1));
            tokio::time::sleep(Duration::from_millis(jitter)).await;
        }
    }
    Ok(ClaimOutcome::Lost)
}
