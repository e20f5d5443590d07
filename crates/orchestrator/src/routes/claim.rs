//! `POST /tasks/claim`: optimistic claims with a compare-and-set on `lock_version`.
//!
//! A claim reads pending candidates of the runner's provider and instance type with their
//! versions and takes the first one still at its version with [`tasks::update_task_claimed`]
//! (one statement for all candidates; a row another claim is writing at that moment is skipped
//! rather than waited for); losing means other runners took them first. No lock is held while
//! a claim is being decided, only for the statement that takes the task.
//! After a round of lost candidates it waits a random moment (so claimers that collided do not
//! collide again in lockstep) and reads fresh candidates, a bounded number of times. Only when
//! every attempt was lost does it answer `wait`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use protocol::{ClaimRequest, ClaimResponse, ClaimedTask, PresignedUrls, layout};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::AppState;
use crate::db::runs;
use crate::db::tasks::{self, ClaimedTaskModel, TaskModel};
use crate::error::AppResult;
use crate::extract::JsonBody;
use crate::routes::run::no_run_yet;

/// How many pending tasks the first round of a claim reads; each later round reads four times
/// as many as the one before, up to [`MAX_CANDIDATES`]. Wide enough that 64 concurrent
/// claimers, trying candidates in random order, mostly try different tasks (measured: with 4,
/// 16 claimers needed 1.6 rounds a claim; with 64, 1.003).
const FIRST_ROUND_CANDIDATES: i64 = 32;

/// The largest candidate window of a round.
const MAX_CANDIDATES: i64 = 256;

/// How many rounds of candidates a claim tries before answering `wait`.
const CLAIM_ROUNDS: u32 = 4;

/// The longest random pause between rounds, in milliseconds; it grows with each round.
const MAX_JITTER_MS_PER_ROUND: u64 = 10;

/// Hands the runner a pending task of its provider and instance type, or says `wait` or `done`.
pub async fn claim_task(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<ClaimRequest>,
) -> AppResult<Json<ClaimResponse>> {
    let mut window = FIRST_ROUND_CANDIDATES;
    for round in 1..=CLAIM_ROUNDS {
        // The common path is two round trips: candidates of the latest run, then the
        // compare-and-set, which returns the run's settings too.
        let mut candidates = tasks::get_claim_candidates(
            &state.db,
            request.provider,
            &request.instance_type,
            window,
        )
        .await?;
        if candidates.is_empty() {
            // Nothing to claim in the latest run (or it is complete or stopped); a 404 only
            // when no run was ever started.
            return match runs::get_latest_run(&state.db).await? {
                Some(_) => Ok(Json(ClaimResponse::Done)),
                None => Err(no_run_yet()),
            };
        }
        // The lowest id first, so that a lone runner gets runs in order (run 1 of an instance
        // type before run 2); the rest in random order, so that claimers who lost it spread out.
        candidates[1..].shuffle(&mut rand::rng());
        // The claim is one statement over every candidate, with no transaction around it (a
        // transaction would cost two round trips and hold the row lock while the URLs are
        // signed). Should signing fail, the claim is given back, so the task stays pending for
        // the next runner; signing only won claims keeps lost ones cheap.
        if let Some(claimed) =
            tasks::update_task_claimed(&state.db, &candidates, &request.runner_id).await?
        {
            let presigned_urls = match presigned_urls(&state, &claimed.task).await {
                Ok(urls) => urls,
                Err(err) => {
                    tasks::update_task_unclaimed(&state.db, &claimed.task).await?;
                    return Err(err);
                }
            };
            return Ok(Json(assigned(claimed, presigned_urls)));
        }
        // A lost first round only means a small window: widen it and try again at once. After
        // that, pause a random moment, so that claimers that collided do not collide again in
        // lockstep.
        window = (window * 4).min(MAX_CANDIDATES);
        if round > 1 {
            let jitter =
                rand::rng().random_range(0..=MAX_JITTER_MS_PER_ROUND * u64::from(round - 1));
            tokio::time::sleep(Duration::from_millis(jitter)).await;
        }
    }
    Ok(Json(ClaimResponse::Wait {
        retry_after_seconds: state.config.claim_retry_after_secs,
    }))
}

/// The upload URLs of a task.
async fn presigned_urls(state: &AppState, task: &TaskModel) -> AppResult<PresignedUrls> {
    let result_key = layout::task_result_key(task.run_id.0, task.id.0);
    let error_key = layout::task_error_key(task.run_id.0, task.id.0);
    Ok(PresignedUrls {
        result: state.presigner.put_url(&result_key).await?,
        error: state.presigner.put_url(&error_key).await?,
    })
}

/// The `assigned` answer for a task just claimed.
fn assigned(claimed: ClaimedTaskModel, presigned_urls: PresignedUrls) -> ClaimResponse {
    let task = claimed.task;
    tracing::info!(task_id = %task.id, runner_id = task.runner_id.as_deref(), "task claimed");
    ClaimResponse::Assigned {
        task: ClaimedTask {
            id: task.id.0,
            run_id: task.run_id.0,
            provider: task.provider,
            instance_type: task.instance_type,
            run: u32::try_from(task.run).unwrap_or_default(),
            ruby_version: claimed.run_ruby_version,
            ruby_bench: claimed.run_ruby_bench.0,
            debug_mode: claimed.run_debug_mode,
        },
        presigned_urls,
    }
}
