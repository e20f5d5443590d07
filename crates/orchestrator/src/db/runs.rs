//! Runs: creation, the latest run, completion and task counts.

use std::collections::BTreeMap;

use protocol::{
    ArchiveState, Provider, RubyBenchSelection, RunConfig, RunState, TaskCounts, TaskStatus,
};
use sqlx::PgExecutor;
use sqlx::types::Json;
use time::OffsetDateTime;

use super::RunId;

/// A row of `runs`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunModel {
    /// The run id.
    pub id: RunId,
    /// Whether the run is going or its archive is uploaded.
    #[sqlx(try_from = "String")]
    pub state: RunState,
    /// The Ruby version benchmarked.
    pub ruby_version: String,
    /// How many tasks each instance type got.
    pub runs_per_instance_type: i32,
    /// The resolved ruby-bench selection, sent with every claimed task.
    pub ruby_bench: Json<RubyBenchSelection>,
    /// Whether runners keep their hosts up after a failure.
    pub debug_mode: bool,
    /// When the run was created.
    pub created_at: OffsetDateTime,
    /// When the run was ended early.
    pub stopped_at: Option<OffsetDateTime>,
    /// When the archive was uploaded.
    pub completed_at: Option<OffsetDateTime>,
    /// The archive builder's progress.
    #[sqlx(try_from = "String")]
    pub archive_state: ArchiveState,
    /// The S3 key of `results.tar.gz`, once uploaded.
    pub archive_key: Option<String>,
    /// Why the last build failed.
    pub archive_error: Option<String>,
    /// Failed builds in a row.
    pub archive_attempts: i32,
    /// When the next build may start, after a failed one.
    pub archive_retry_at: Option<OffsetDateTime>,
}

/// The columns of [`RunModel`], for every query that returns runs (also in `run_history`).
macro_rules! run_columns {
    () => {
        "id, state, ruby_version, runs_per_instance_type, ruby_bench, debug_mode, created_at, \
         stopped_at, completed_at, archive_state, archive_key, archive_error, archive_attempts, \
         archive_retry_at"
    };
}
pub(super) use run_columns;

/// The most recently created run, whatever its state.
pub async fn get_latest_run(executor: impl PgExecutor<'_>) -> sqlx::Result<Option<RunModel>> {
    sqlx::query_as(concat!(
        "SELECT ",
        run_columns!(),
        " FROM runs ORDER BY seq DESC LIMIT 1"
    ))
    .fetch_optional(executor)
    .await
}

/// The run in state `running`, if any (there is at most one).
pub async fn get_running_run(executor: impl PgExecutor<'_>) -> sqlx::Result<Option<RunModel>> {
    sqlx::query_as(concat!(
        "SELECT ",
        run_columns!(),
        " FROM runs WHERE state = 'running'"
    ))
    .fetch_optional(executor)
    .await
}

/// A run id for a config without one: now in Unix seconds by the database clock, or one more
/// than the largest id so far, so that two runs started within a second do not collide.
pub async fn get_next_run_id(executor: impl PgExecutor<'_>) -> sqlx::Result<RunId> {
    sqlx::query_scalar(
        "SELECT greatest(extract(epoch FROM now())::bigint, coalesce(max(id), 0) + 1) FROM runs",
    )
    .fetch_one(executor)
    .await
    .map(RunId)
}

/// Inserts a running run for `config`. Fails with a unique violation of `runs_pkey` when the
/// id exists, or of `runs_one_running` when another run is running.
pub async fn insert_run(
    executor: impl PgExecutor<'_>,
    id: RunId,
    config: &RunConfig,
) -> sqlx::Result<RunModel> {
    sqlx::query_as(concat!(
        "INSERT INTO runs (id, ruby_version, runs_per_instance_type, ruby_bench, debug_mode, config) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
        run_columns!()
    ))
    .bind(id)
    .bind(&config.ruby_version)
    .bind(i32::try_from(config.runs_per_instance_type).unwrap_or(i32::MAX))
    .bind(Json(&config.ruby_bench))
    .bind(config.debug_mode)
    .bind(Json(config))
    .fetch_one(executor)
    .await
}

/// Marks a run complete with its uploaded archive; `completed_at` is set in the same update.
pub async fn update_run_complete(
    executor: impl PgExecutor<'_>,
    id: RunId,
    archive_key: &str,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE runs SET state = 'complete', completed_at = now(), archive_state = 'uploaded', \
             archive_key = $2, archive_error = NULL, archive_retry_at = NULL \
         WHERE id = $1 AND state = 'running'",
    )
    .bind(id)
    .bind(archive_key)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The task counts of one run: all its tasks, and those of each provider and instance type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunTaskCounts {
    /// Every task of the run.
    pub all: TaskCounts,
    /// By provider, then instance type.
    pub by_instance_type: Vec<InstanceTypeCounts>,
}

/// The task counts of one provider and instance type of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceTypeCounts {
    /// The provider.
    pub provider: Provider,
    /// The instance type.
    pub instance_type: String,
    /// Its tasks by state.
    pub counts: TaskCounts,
}

/// One group of [`get_task_counts`].
#[derive(sqlx::FromRow)]
struct TaskCountRow {
    run_id: RunId,
    #[sqlx(try_from = "String")]
    provider: Provider,
    instance_type: String,
    #[sqlx(try_from = "String")]
    state: TaskStatus,
    count: i64,
}

/// How many tasks of each of the runs are in each state, in all and by provider and instance
/// type: the one count behind `GET /run`, the dashboard and its past runs. A run without
/// tasks (or with none left after an early stop) is in the map with zero counts.
pub async fn get_task_counts(
    executor: impl PgExecutor<'_>,
    ids: &[RunId],
) -> sqlx::Result<BTreeMap<RunId, RunTaskCounts>> {
    let rows: Vec<TaskCountRow> = sqlx::query_as(
        "SELECT run_id, provider, instance_type, state, count(*) AS count FROM tasks \
         WHERE run_id = ANY($1) GROUP BY run_id, provider, instance_type, state",
    )
    .bind(ids.iter().map(|id| id.0).collect::<Vec<i64>>())
    .fetch_all(executor)
    .await?;
    let mut by_run: BTreeMap<RunId, BTreeMap<(&'static str, String), InstanceTypeCounts>> =
        ids.iter().map(|id| (*id, BTreeMap::new())).collect();
    for row in rows {
        let count = u64::try_from(row.count).unwrap_or_default();
        let group = by_run
            .entry(row.run_id)
            .or_default()
            .entry((row.provider.as_str(), row.instance_type.clone()))
            .or_insert_with(|| InstanceTypeCounts {
                provider: row.provider,
                instance_type: row.instance_type,
                counts: TaskCounts::default(),
            });
        add_count(&mut group.counts, row.state, count);
    }
    Ok(by_run
        .into_iter()
        .map(|(id, groups)| {
            let mut counts = RunTaskCounts::default();
            for group in groups.into_values() {
                for (state, count) in [
                    (TaskStatus::Pending, group.counts.pending),
                    (TaskStatus::Claimed, group.counts.claimed),
                    (TaskStatus::Completed, group.counts.completed),
                    (TaskStatus::Failed, group.counts.failed),
                ] {
                    add_count(&mut counts.all, state, count);
                }
                counts.by_instance_type.push(group);
            }
            (id, counts)
        })
        .collect())
}

/// Adds `count` tasks in `state` to `counts`.
fn add_count(counts: &mut TaskCounts, state: TaskStatus, count: u64) {
    let slot = match state {
        TaskStatus::Pending => &mut counts.pending,
        TaskStatus::Claimed => &mut counts.claimed,
        TaskStatus::Completed => &mut counts.completed,
        TaskStatus::Failed => &mut counts.failed,
    };
    *slot += count;
    counts.total += count;
}

/// The running run, locked until the transaction ends, so that an early stop and other
/// changes of the run happen one after the other.
pub async fn get_running_run_for_update(
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Option<RunModel>> {
    sqlx::query_as(concat!(
        "SELECT ",
        run_columns!(),
        " FROM runs WHERE state = 'running' FOR UPDATE"
    ))
    .fetch_optional(executor)
    .await
}

/// Records that the run was ended early, by the database clock.
pub async fn update_run_stopped(executor: impl PgExecutor<'_>, id: RunId) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE runs SET stopped_at = now(), archive_retry_at = NULL \
         WHERE id = $1 AND state = 'running' AND stopped_at IS NULL",
    )
    .bind(id)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Claims the building of the run's archive: a compare-and-set from `none` (or a failed
/// attempt whose backoff has passed) to `building`, only while the run is running and none of
/// its tasks is pending or claimed. Of any number of callers at most one gets true, so a run
/// has one builder.
pub async fn update_run_archive_building(
    executor: impl PgExecutor<'_>,
    id: RunId,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE runs SET archive_state = 'building' \
         WHERE id = $1 AND state = 'running' AND archive_state IN ('none', 'failed') \
             AND (archive_retry_at IS NULL OR archive_retry_at <= now()) \
             AND NOT EXISTS ( \
                 SELECT 1 FROM tasks WHERE run_id = $1 AND state IN ('pending', 'claimed'))",
    )
    .bind(id)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Records that building the archive failed, and when the next attempt may start: `first`
/// after the first failure, twice as long after each further one in a row, at most `max`.
pub async fn update_run_archive_failed(
    executor: impl PgExecutor<'_>,
    id: RunId,
    error: &str,
    first: std::time::Duration,
    max: std::time::Duration,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE runs SET archive_state = 'failed', archive_error = $2, \
             archive_attempts = archive_attempts + 1, \
             archive_retry_at = now() + make_interval( \
                 secs => least($4, $3 * power(2, least(archive_attempts, 30)))) \
         WHERE id = $1 AND state = 'running' AND archive_state = 'building'",
    )
    .bind(id)
    .bind(error)
    .bind(first.as_secs_f64())
    .bind(max.as_secs_f64())
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Hands a build that stopped without recording its end back to the builder: `building`
/// becomes `failed` with `error`, the next attempt due now.
pub async fn update_run_archive_orphaned(
    executor: impl PgExecutor<'_>,
    id: RunId,
    error: &str,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE runs SET archive_state = 'failed', archive_error = $2, archive_retry_at = NULL \
         WHERE id = $1 AND state = 'running' AND archive_state = 'building'",
    )
    .bind(id)
    .bind(error)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Lets the next build of a failed archive start now instead of after its backoff (an
/// operator ending the run early asks for the archive).
pub async fn update_run_archive_retry_now(
    executor: impl PgExecutor<'_>,
    id: RunId,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE runs SET archive_retry_at = NULL \
         WHERE id = $1 AND state = 'running' AND archive_state = 'failed'",
    )
    .bind(id)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}
