//! Tasks: creation, optimistic claims, heartbeats, completion and failure.

use std::collections::BTreeMap;

use protocol::{
    ClaimedTask, ErrorType, FailRequest, FailedBy, HeartbeatRequest, Provider, RubyBenchSelection,
    TaskSpec, TaskStatus, TaskSummary,
};
use sqlx::types::Json;
use sqlx::{FromRow, PgExecutor, Row};
use time::OffsetDateTime;

use super::{RunId, TaskId};

/// A row of `tasks`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskModel {
    /// The task id.
    pub id: TaskId,
    /// The run it belongs to.
    pub run_id: RunId,
    /// The provider whose runners may claim it.
    #[sqlx(try_from = "String")]
    pub provider: Provider,
    /// The instance type whose runners may claim it.
    pub instance_type: String,
    /// Which run of its instance type it is, from 1.
    pub run: i32,
    /// Its state.
    #[sqlx(try_from = "String")]
    pub state: TaskStatus,
    /// Bumped by every state change; claims compare and set it.
    pub lock_version: i32,
    /// The runner holding (or last holding) the task.
    pub runner_id: Option<String>,
    /// When it was claimed.
    pub claimed_at: Option<OffsetDateTime>,
    /// When the last heartbeat arrived (or the claim, before any).
    pub last_heartbeat_at: Option<OffsetDateTime>,
    /// The phase of the last heartbeat.
    pub phase: Option<String>,
    /// The benchmark running at the last heartbeat.
    pub current_benchmark: Option<String>,
    /// Progress at the last heartbeat, 0 to 100.
    pub progress_pct: Option<i16>,
    /// The message of the last heartbeat.
    pub message: Option<String>,
    /// When `/complete` arrived.
    pub completed_at: Option<OffsetDateTime>,
    /// The key of the uploaded `result.tar.gz`.
    pub s3_result_key: Option<String>,
    /// When the task failed.
    pub failed_at: Option<OffsetDateTime>,
    /// Who failed it, a [`FailedBy`]. Only the runner's own failures answer a retried `/fail`
    /// with 200.
    pub failed_by: Option<String>,
    /// A short machine-readable kind of failure.
    pub error_type: Option<String>,
    /// What went wrong, for people.
    pub error_message: Option<String>,
    /// The key of the uploaded `error.tar.gz`, if any.
    pub s3_error_key: Option<String>,
    /// Whether the failed runner kept its host up.
    pub debug_mode: Option<bool>,
    /// How often a runner gave the task back because its host could not prepare it.
    pub release_count: i32,
    /// Why the last runner that gave it back could not prepare it.
    pub release_message: Option<String>,
}

impl TaskModel {
    /// Which run of its instance type it is, as the wire types count it.
    pub fn run_number(&self) -> u32 {
        u32::try_from(self.run).unwrap_or_default()
    }
}

impl From<TaskModel> for TaskSummary {
    fn from(task: TaskModel) -> Self {
        Self {
            id: task.id.0,
            run: task.run_number(),
            provider: task.provider,
            instance_type: task.instance_type,
            status: task.state,
        }
    }
}

/// The columns of [`TaskModel`], for every query that returns tasks.
macro_rules! task_columns {
    () => {
        "id, run_id, provider, instance_type, run, state, lock_version, runner_id, claimed_at, \
         last_heartbeat_at, phase, current_benchmark, progress_pct, message, completed_at, \
         s3_result_key, failed_at, failed_by, error_type, error_message, s3_error_key, debug_mode, \
         release_count, release_message"
    };
}

/// Since when the orchestrator has been listening ([`super::hearing`]), in SQL: the end of
/// time before its first periodic check, so that nothing is silent then.
macro_rules! listening_since {
    () => {
        "coalesce((SELECT listening_since FROM orchestrator_hearing), 'infinity')"
    };
}

/// When a runner was last heard of through a task, in SQL: its claim, last heartbeat,
/// completion or own failure report, the latest of them (an aggregate: `max` over the tasks).
macro_rules! runner_last_seen {
    () => {
        "max(greatest(claimed_at, last_heartbeat_at, completed_at, \
             CASE WHEN failed_by = 'runner' THEN failed_at END))"
    };
}

/// Inserts a run's tasks in the given order; ids grow in that order.
pub async fn insert_tasks(
    executor: impl PgExecutor<'_>,
    run_id: RunId,
    specs: &[TaskSpec],
) -> sqlx::Result<Vec<TaskModel>> {
    let providers: Vec<&str> = specs.iter().map(|spec| spec.provider.as_str()).collect();
    let instance_types: Vec<&str> = specs
        .iter()
        .map(|spec| spec.instance_type.as_str())
        .collect();
    let runs: Vec<i32> = specs
        .iter()
        .map(|spec| i32::try_from(spec.run).unwrap_or(i32::MAX))
        .collect();
    let mut tasks: Vec<TaskModel> = sqlx::query_as(concat!(
        "INSERT INTO tasks (run_id, provider, instance_type, run) \
         SELECT $1, provider, instance_type, run \
         FROM unnest($2::text[], $3::text[], $4::int[]) WITH ORDINALITY \
             AS spec (provider, instance_type, run, ord) \
         ORDER BY ord \
         RETURNING ",
        task_columns!()
    ))
    .bind(run_id)
    .bind(providers)
    .bind(instance_types)
    .bind(runs)
    .fetch_all(executor)
    .await?;
    // RETURNING promises no order; identity values follow the ORDER BY of the SELECT.
    tasks.sort_by_key(|task| task.id);
    Ok(tasks)
}

/// One task by id.
pub async fn get_task(
    executor: impl PgExecutor<'_>,
    id: TaskId,
) -> sqlx::Result<Option<TaskModel>> {
    sqlx::query_as(concat!(
        "SELECT ",
        task_columns!(),
        " FROM tasks WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await
}

/// Every task of a run, by id.
pub async fn get_run_tasks(
    executor: impl PgExecutor<'_>,
    run_id: RunId,
) -> sqlx::Result<Vec<TaskModel>> {
    sqlx::query_as(concat!(
        "SELECT ",
        task_columns!(),
        " FROM tasks WHERE run_id = $1 ORDER BY id"
    ))
    .bind(run_id)
    .fetch_all(executor)
    .await
}

/// Where a claim's scan of pending tasks starts: a task key (`run`, then `id`) of one run,
/// provider and instance type below which no task of theirs is pending. Claims take tasks
/// from the low end, so the index entries there belong to tasks claimed already; they stay in
/// the index until a vacuum, and a scan from the very start would step over every one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimStart {
    /// The run the key belongs to; ignored for any other run.
    pub run_id: RunId,
    /// The task's run number.
    pub run: i32,
    /// The task's id.
    pub id: TaskId,
}

/// How widely one claim statement looks: how many pending tasks it reads from the start key
/// in order, and how many of them it tries (the lowest first when asked, the others at random).
/// The sizes are written into the statement: a literal `LIMIT` is planned with its value; a
/// bound one is guessed at, and the guess chose a merge join over the whole primary key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimWindow {
    sql: &'static str,
}

impl ClaimWindow {
    /// The window's claim statement (for the test of its plan); its parameters are listed
    /// at the `claim_sql` macro.
    pub fn sql(&self) -> &'static str {
        self.sql
    }
}

/// The claim statement for a window of `$candidates` read and `$tried` tried tasks.
///
/// Its parameters:
///
/// | | type | what |
/// |---|---|---|
/// | `$1` | text | the runner's provider |
/// | `$2` | text | the runner's instance type |
/// | `$3` | bigint | the run of the scan start ([`ClaimStart::run_id`]); 0 for none |
/// | `$4` | int | the run number of the scan start ([`ClaimStart::run`]); 0 for none |
/// | `$5` | bigint | the task id of the scan start ([`ClaimStart::id`]); 0 for none |
/// | `$6` | text | the runner id the task is given to |
/// | `$7` | boolean | whether the lowest candidate is tried first (a lone claim) |
///
/// A start of another run than the latest is ignored: the scan begins at the lowest task.
/// `latest`, `candidates` and `tried` are `MATERIALIZED`: each is computed once, on its own,
/// and not folded into the queries that read it. `tests/api/claim_plan.rs` holds the plan of
/// every window to the index of pending tasks (BENCHMARKS.md lists the plans it rules out).
macro_rules! claim_sql {
    ($candidates:literal, $tried:literal) => {
        concat!(
            // latest: the run claims come from, the newest by `seq`, and the settings the
            // runner needs; no row when it is complete or was stopped (then nothing is read).
            "WITH latest AS MATERIALIZED ( \
                 SELECT id, ruby_version, ruby_bench, debug_mode FROM runs \
                 WHERE id = (SELECT id FROM runs ORDER BY seq DESC LIMIT 1) \
                     AND state = 'running' AND stopped_at IS NULL \
             ), ",
            // candidates: up to `$candidates` pending tasks of the provider and instance type
            // from the scan start on, in run-number order, with the versions this statement's
            // snapshot sees; `ord` numbers them from 1. The condition is a range of the key of
            // `tasks_pending` (run_id, provider, instance_type, run, id), read in its order.
            "candidates AS MATERIALIZED ( \
                 SELECT id, run, lock_version, row_number() OVER (ORDER BY run, id) AS ord \
                 FROM tasks \
                 WHERE run_id = (SELECT id FROM latest) AND provider = $1 \
                     AND instance_type = $2 AND state = 'pending' \
                     AND (run, id) >= ( \
                         CASE WHEN $3 = (SELECT id FROM latest) THEN $4 ELSE 0 END, \
                         CASE WHEN $3 = (SELECT id FROM latest) THEN $5 ELSE 0 END) \
                 ORDER BY run, id LIMIT ",
            stringify!($candidates),
            // tried: the `$tried` candidates to try, in the order to try them: the lowest
            // first when `$7` (rank 0), the others in random order (ranks in 1..2).
            " ), tried AS MATERIALIZED ( \
                 SELECT id, lock_version, \
                     CASE WHEN ord = 1 AND $7 THEN 0 ELSE 1 + random() END AS rank \
                 FROM candidates ORDER BY rank LIMIT ",
            stringify!($tried),
            // chosen: the first tried task whose row is still at the version read, found by
            // primary key and locked; a row another claim is locking is skipped, not waited
            // for. A row changed after the snapshot is re-read when locked (EvalPlanQual) and
            // passed over if its version moved.
            " ), chosen AS ( \
                 SELECT t.id, t.lock_version FROM tried JOIN tasks t ON t.id = tried.id \
                 WHERE t.lock_version = tried.lock_version \
                 ORDER BY tried.rank LIMIT 1 \
                 FOR UPDATE OF t SKIP LOCKED \
             ), ",
            // claimed: the compare-and-set that gives the chosen task to runner `$6`, by id
            // and version only (no `state`: see [`claim_task`]).
            "claimed AS ( \
                 UPDATE tasks SET state = 'claimed', runner_id = $6, \
                     lock_version = tasks.lock_version + 1, claimed_at = now(), \
                     last_heartbeat_at = now() \
                 FROM chosen \
                 WHERE tasks.id = chosen.id AND tasks.lock_version = chosen.lock_version \
                 RETURNING tasks.* \
             ) ",
            // The answer, always one row: how many candidates were read, the lowest of them
            // (the next scan start), the claimed task if any, and its run's settings.
            "SELECT (SELECT count(*) FROM candidates) AS candidates, \
                 latest.id AS start_run_id, first.run AS start_run, first.id AS start_id, \
                 claimed.*, latest.ruby_version AS run_ruby_version, \
                 latest.ruby_bench AS run_ruby_bench, latest.debug_mode AS run_debug_mode \
             FROM (SELECT) AS one \
                 LEFT JOIN latest ON true \
                 LEFT JOIN candidates first ON first.ord = 1 \
                 LEFT JOIN claimed ON true"
        )
    };
}

/// The windows of a claim's rounds: narrow while few claims compete, wider after a lost round
/// (32 read and 8 tried, 128 and 16, 256 and 32).
pub const CLAIM_WINDOWS: [ClaimWindow; 3] = [
    ClaimWindow {
        sql: claim_sql!(32, 8),
    },
    ClaimWindow {
        sql: claim_sql!(128, 16),
    },
    ClaimWindow {
        sql: claim_sql!(256, 32),
    },
];

/// What one claim statement found.
#[derive(Debug, Clone)]
pub struct ClaimAttempt {
    /// How many pending tasks it read (at most the window's); zero means none of
    /// this provider and instance type is pending at or after the start key in the latest run,
    /// or the latest run is complete or stopped.
    pub candidates: i64,
    /// The lowest pending task it read: where the next claim may start.
    pub start: Option<ClaimStart>,
    /// The task it took, if it won one.
    pub claimed: Option<ClaimedTaskModel>,
}

/// The optimistic claim, in one statement: reads pending tasks of the latest run for this
/// provider and instance type from `start` on (from the lowest when `start` is `None` or of
/// another run) with their versions, then takes the first that is still pending at the
/// version read, trying the lowest first when `lowest_first` and the others in random order,
/// so that concurrent claimers spread out. The take is a compare-and-set on `lock_version`; a task
/// that another claim is writing at that moment is skipped
/// (`SKIP LOCKED`) instead of waited for, since that claim will most likely win it.
///
/// The update names no `state`: the row is locked at the version read, and every state
/// change bumps the version, so it is pending. (A `state = 'pending'` there would let the
/// planner reach the row through the index of pending tasks, and when its statistics say few
/// tasks are pending it does, walking every pending task.)
///
/// The read and the take share the statement's snapshot: a task claimed by a statement that
/// committed in between fails the version check when it is locked (Postgres re-reads the
/// newest version of a locked row and checks the condition again) and is passed over. One
/// round trip decides a claim; no lock is held while candidates are read.
pub async fn claim_task(
    executor: impl PgExecutor<'_>,
    window: &ClaimWindow,
    provider: Provider,
    instance_type: &str,
    runner_id: &str,
    start: Option<ClaimStart>,
    lowest_first: bool,
) -> sqlx::Result<ClaimAttempt> {
    let start = start.unwrap_or(ClaimStart {
        run_id: RunId(0),
        run: 0,
        id: TaskId(0),
    });
    let row = sqlx::query(window.sql)
        .bind(provider.as_str())
        .bind(instance_type)
        .bind(start.run_id)
        .bind(start.run)
        .bind(start.id)
        .bind(runner_id)
        .bind(lowest_first)
        .fetch_one(executor)
        .await?;
    let candidates: i64 = row.try_get("candidates")?;
    let start = match (
        row.try_get::<Option<RunId>, _>("start_run_id")?,
        row.try_get::<Option<i32>, _>("start_run")?,
        row.try_get::<Option<TaskId>, _>("start_id")?,
    ) {
        (Some(run_id), Some(run), Some(id)) => Some(ClaimStart { run_id, run, id }),
        _ => None,
    };
    let claimed = match row.try_get::<Option<TaskId>, _>("id")? {
        Some(_) => Some(ClaimedTaskModel::from_row(&row)?),
        None => None,
    };
    Ok(ClaimAttempt {
        candidates,
        start,
        claimed,
    })
}

/// A task just claimed, with what the runner needs of its run.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedTaskModel {
    /// The task, now claimed.
    #[sqlx(flatten)]
    pub task: TaskModel,
    /// The run's Ruby version.
    pub run_ruby_version: String,
    /// The run's resolved ruby-bench selection.
    pub run_ruby_bench: Json<RubyBenchSelection>,
    /// Whether the run's runners keep their hosts up after a failure.
    pub run_debug_mode: bool,
}

impl From<ClaimedTaskModel> for ClaimedTask {
    fn from(claimed: ClaimedTaskModel) -> Self {
        let task = claimed.task;
        Self {
            id: task.id.0,
            run_id: task.run_id.0,
            run: task.run_number(),
            provider: task.provider,
            instance_type: task.instance_type,
            ruby_version: claimed.run_ruby_version,
            ruby_bench: claimed.run_ruby_bench.0,
            debug_mode: claimed.run_debug_mode,
        }
    }
}

/// Records a heartbeat of the runner holding the task, by the database clock. Returns false
/// when the task does not exist or `runner_id` does not hold it. The lock version is left alone:
/// a heartbeat changes no state, and leaving it alone keeps this a HOT update.
pub async fn update_task_heartbeat(
    executor: impl PgExecutor<'_>,
    id: TaskId,
    heartbeat: &HeartbeatRequest,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE tasks SET last_heartbeat_at = now(), phase = $3, current_benchmark = $4, \
             progress_pct = $5, message = $6 \
         WHERE id = $1 AND state = 'claimed' AND runner_id = $2",
    )
    .bind(id)
    .bind(&heartbeat.runner_id)
    .bind(heartbeat.status.as_str())
    .bind(heartbeat.current_benchmark.as_deref())
    .bind(heartbeat.progress_pct.map(i16::from))
    .bind(heartbeat.message.as_deref())
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Marks the task completed if `runner_id` holds it. Returns false otherwise.
pub async fn update_task_completed(
    executor: impl PgExecutor<'_>,
    id: TaskId,
    runner_id: &str,
    s3_result_key: &str,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE tasks SET state = 'completed', completed_at = now(), s3_result_key = $3, \
             lock_version = lock_version + 1 \
         WHERE id = $1 AND state = 'claimed' AND runner_id = $2",
    )
    .bind(id)
    .bind(runner_id)
    .bind(s3_result_key)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Marks the task failed by its runner if `runner_id` holds it. Returns false otherwise.
pub async fn update_task_failed(
    executor: impl PgExecutor<'_>,
    id: TaskId,
    failure: &FailRequest,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE tasks SET state = 'failed', failed_at = now(), failed_by = $7, \
             error_type = $3, error_message = $4, s3_error_key = $5, debug_mode = $6, \
             lock_version = lock_version + 1 \
         WHERE id = $1 AND state = 'claimed' AND runner_id = $2",
    )
    .bind(id)
    .bind(&failure.runner_id)
    .bind(&failure.error_type)
    .bind(&failure.error_message)
    .bind(failure.s3_error_key.as_deref())
    .bind(failure.debug_mode)
    .bind(FailedBy::Runner.as_str())
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// A task at the version it was read, for a compare-and-set on `state` and `lock_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct TaskVersion {
    /// The task id.
    pub id: TaskId,
    /// The version read.
    pub lock_version: i32,
}

/// Claimed tasks (of any run) silent for at least `timeout_secs` by the database clock: no
/// heartbeat for that long while the orchestrator was listening ([`super::hearing`]). Before
/// the first periodic check nothing is silent.
pub async fn get_silent_tasks(
    executor: impl PgExecutor<'_>,
    timeout_secs: f64,
) -> sqlx::Result<Vec<TaskVersion>> {
    sqlx::query_as(concat!(
        "SELECT id, lock_version FROM tasks \
         WHERE state = 'claimed' AND greatest(last_heartbeat_at, ",
        listening_since!(),
        ") <= now() - make_interval(secs => $1) ORDER BY id"
    ))
    .bind(timeout_secs)
    .fetch_all(executor)
    .await
}

/// Fails a silent task for the orchestrator, only if it is still claimed at the version read
/// and still silent: a task completed, failed or heartbeating in the meantime is left alone.
pub async fn update_task_timed_out(
    executor: impl PgExecutor<'_>,
    task: TaskVersion,
    timeout_secs: f64,
    message: &str,
) -> sqlx::Result<Option<TaskModel>> {
    sqlx::query_as(concat!(
        "UPDATE tasks SET state = 'failed', failed_at = now(), failed_by = $6, \
             error_type = $4, error_message = $5, lock_version = lock_version + 1 \
         WHERE id = $1 AND lock_version = $2 AND state = 'claimed' \
             AND greatest(last_heartbeat_at, ",
        listening_since!(),
        ") <= now() - make_interval(secs => $3) \
         RETURNING ",
        task_columns!()
    ))
    .bind(task.id)
    .bind(task.lock_version)
    .bind(timeout_secs)
    .bind(ErrorType::HeartbeatTimeout.as_str())
    .bind(message)
    .bind(FailedBy::Orchestrator.as_str())
    .fetch_optional(executor)
    .await
}

/// A provider and instance type of a run whose pending tasks were failed as `no_runner`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NoRunnerType {
    /// The provider.
    #[sqlx(try_from = "String")]
    pub provider: Provider,
    /// The instance type.
    pub instance_type: String,
    /// How many of its tasks were failed.
    pub failed: i64,
}

/// Fails, as `no_runner` for the orchestrator, the pending tasks of the running run's
/// provider and instance types that no runner has been seen for in `timeout_secs`: no claim,
/// heartbeat or report of any task of the type since the run started, or since the
/// orchestrator started listening ([`super::hearing`]), whichever is later. A released task's
/// last reason goes into the message.
pub async fn update_tasks_no_runner(
    executor: impl PgExecutor<'_>,
    run_id: RunId,
    timeout_secs: f64,
) -> sqlx::Result<Vec<NoRunnerType>> {
    sqlx::query_as(concat!(
        "WITH seen AS ( \
             SELECT provider, instance_type, ",
        runner_last_seen!(),
        " AS last_seen \
             FROM tasks WHERE run_id = $1 GROUP BY provider, instance_type \
         ), quiet AS ( \
             SELECT seen.provider, seen.instance_type FROM seen, runs \
             WHERE runs.id = $1 AND runs.state = 'running' \
                 AND greatest(seen.last_seen, runs.created_at, ",
        listening_since!(),
        ") <= now() - make_interval(secs => $2) \
         ), failed AS ( \
             UPDATE tasks SET state = 'failed', failed_at = now(), failed_by = $3, \
                 error_type = $4, lock_version = lock_version + 1, \
                 error_message = format('no runner of %s %s claimed or reported a task for %s \
                     seconds (NO_RUNNER_TIMEOUT_SECS): its hosts never came up, gave up, or \
                     were ended', tasks.provider, tasks.instance_type, $2::bigint) \
                     || coalesce('; the last runner that held it gave it back: ' \
                         || release_message, '') \
             FROM quiet \
             WHERE tasks.run_id = $1 AND tasks.state = 'pending' \
                 AND tasks.provider = quiet.provider \
                 AND tasks.instance_type = quiet.instance_type \
             RETURNING tasks.provider, tasks.instance_type \
         ) \
         SELECT provider, instance_type, count(*) AS failed FROM failed \
         GROUP BY provider, instance_type ORDER BY provider, instance_type"
    ))
    .bind(run_id)
    .bind(timeout_secs)
    .bind(FailedBy::Orchestrator.as_str())
    .bind(ErrorType::NoRunner.as_str())
    .fetch_all(executor)
    .await
}

/// Gives a task its holder could not prepare (the benchmark never started) back: it is
/// pending again, for any runner of its type, with the reason kept. Returns false when
/// `runner_id` does not hold it.
pub async fn update_task_released(
    executor: impl PgExecutor<'_>,
    id: TaskId,
    runner_id: &str,
    message: &str,
) -> sqlx::Result<Option<TaskModel>> {
    sqlx::query_as(concat!(
        "UPDATE tasks SET state = 'pending', runner_id = NULL, claimed_at = NULL, \
             last_heartbeat_at = NULL, phase = NULL, current_benchmark = NULL, \
             progress_pct = NULL, message = NULL, lock_version = lock_version + 1, \
             release_count = release_count + 1, release_message = $3 \
         WHERE id = $1 AND state = 'claimed' AND runner_id = $2 \
         RETURNING ",
        task_columns!()
    ))
    .bind(id)
    .bind(runner_id)
    .bind(message)
    .fetch_optional(executor)
    .await
}

/// Tasks of the run that the orchestrator failed while their runner may still have finished
/// them (heartbeat timeout, early stop): the archive builder looks for their results in S3.
pub async fn get_tasks_failed_by_orchestrator(
    executor: impl PgExecutor<'_>,
    run_id: RunId,
) -> sqlx::Result<Vec<TaskVersion>> {
    sqlx::query_as(
        "SELECT id, lock_version FROM tasks \
         WHERE run_id = $1 AND state = 'failed' AND failed_by = $2 \
             AND error_type = ANY($3) ORDER BY id",
    )
    .bind(run_id)
    .bind(FailedBy::Orchestrator.as_str())
    .bind([
        ErrorType::HeartbeatTimeout.as_str(),
        ErrorType::RunStopped.as_str(),
    ])
    .fetch_all(executor)
    .await
}

/// Marks a task the orchestrator failed as completed after all, with the result its runner
/// uploaded, if it is still at the version read. The failure is kept in `message`.
pub async fn update_task_completed_late(
    executor: impl PgExecutor<'_>,
    task: TaskVersion,
    s3_result_key: &str,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE tasks SET state = 'completed', completed_at = now(), s3_result_key = $3, \
             message = 'completed late: its result reached S3 after the orchestrator failed \
                 it (' || error_type || ': ' || coalesce(error_message, '') || ')', \
             failed_at = NULL, failed_by = NULL, error_type = NULL, error_message = NULL, \
             lock_version = lock_version + 1 \
         WHERE id = $1 AND lock_version = $2 AND state = 'failed'",
    )
    .bind(task.id)
    .bind(task.lock_version)
    .bind(s3_result_key)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// How many of the run's tasks failed with each `error_type` (`unknown` for none recorded).
pub async fn get_failed_counts_by_error_type(
    executor: impl PgExecutor<'_>,
    run_id: RunId,
) -> sqlx::Result<BTreeMap<String, u64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT coalesce(error_type, $2), count(*) FROM tasks \
         WHERE run_id = $1 AND state = 'failed' GROUP BY 1",
    )
    .bind(run_id)
    .bind(ErrorType::Unknown.as_str())
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(error_type, count)| (error_type, u64::try_from(count).unwrap_or_default()))
        .collect())
}

/// A runner slot that held tasks of a run, as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RunnerSeen {
    /// The provider of its tasks.
    #[sqlx(try_from = "String")]
    pub provider: Provider,
    /// Their instance type.
    pub instance_type: String,
    /// The slot's runner id.
    pub runner_id: String,
    /// Its last claim, heartbeat or report, by the database clock.
    pub last_seen: Option<OffsetDateTime>,
    /// Whether it holds a task now.
    pub busy: bool,
}

/// The runner slots that held a task of the run, with when each was last heard of.
pub async fn get_runners_seen(
    executor: impl PgExecutor<'_>,
    run_id: RunId,
) -> sqlx::Result<Vec<RunnerSeen>> {
    sqlx::query_as(concat!(
        "SELECT provider, instance_type, runner_id, ",
        runner_last_seen!(),
        " AS last_seen, bool_or(state = 'claimed') AS busy \
         FROM tasks WHERE run_id = $1 AND runner_id IS NOT NULL \
         GROUP BY provider, instance_type, runner_id \
         ORDER BY provider, instance_type, runner_id",
    ))
    .bind(run_id)
    .fetch_all(executor)
    .await
}

/// Deletes the run's pending tasks (an early stop); returns how many.
pub async fn delete_pending_tasks(
    executor: impl PgExecutor<'_>,
    run_id: RunId,
) -> sqlx::Result<u64> {
    let result = sqlx::query("DELETE FROM tasks WHERE run_id = $1 AND state = 'pending'")
        .bind(run_id)
        .execute(executor)
        .await?;
    Ok(result.rows_affected())
}

/// Fails the run's claimed tasks for the orchestrator with `error_type: run_stopped`; returns
/// how many.
pub async fn update_claimed_tasks_stopped(
    executor: impl PgExecutor<'_>,
    run_id: RunId,
    message: &str,
) -> sqlx::Result<u64> {
    let result = sqlx::query(
        "UPDATE tasks SET state = 'failed', failed_at = now(), failed_by = $4, \
             error_type = $2, error_message = $3, lock_version = lock_version + 1 \
         WHERE run_id = $1 AND state = 'claimed'",
    )
    .bind(run_id)
    .bind(ErrorType::RunStopped.as_str())
    .bind(message)
    .bind(FailedBy::Orchestrator.as_str())
    .execute(executor)
    .await?;
    Ok(result.rows_affected())
}

/// A finished task as the archive builder needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ArchiveTaskModel {
    /// The task id.
    pub id: TaskId,
    /// Its instance type (the folder name's first part).
    pub instance_type: String,
    /// Its run (the folder name's second part).
    pub run: i32,
    /// Completed or failed.
    #[sqlx(try_from = "String")]
    pub state: TaskStatus,
    /// Why it failed, if it did.
    pub error_type: Option<String>,
    /// What went wrong, if it failed.
    pub error_message: Option<String>,
    /// When it finished.
    pub finished_at: Option<OffsetDateTime>,
}

/// Up to `limit` finished tasks of a run with ids above `after`, by id: the archive builder
/// pages through a run, so its memory does not grow with the number of tasks.
pub async fn get_finished_tasks_page(
    executor: impl PgExecutor<'_>,
    run_id: RunId,
    after: TaskId,
    limit: i64,
) -> sqlx::Result<Vec<ArchiveTaskModel>> {
    sqlx::query_as(
        "SELECT id, instance_type, run, state, error_type, error_message, \
             coalesce(completed_at, failed_at) AS finished_at \
         FROM tasks WHERE run_id = $1 AND id > $2 AND state IN ('completed', 'failed') \
         ORDER BY id LIMIT $3",
    )
    .bind(run_id)
    .bind(after)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// Gives back a claim whose answer could not be made (signing its URLs failed): the task is
/// pending again, if it is still claimed as `claimed` left it.
pub async fn update_task_unclaimed(
    executor: impl PgExecutor<'_>,
    claimed: &TaskModel,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE tasks SET state = 'pending', runner_id = NULL, claimed_at = NULL, \
             last_heartbeat_at = NULL, lock_version = lock_version + 1 \
         WHERE id = $1 AND lock_version = $2 AND state = 'claimed'",
    )
    .bind(claimed.id)
    .bind(claimed.lock_version)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}
