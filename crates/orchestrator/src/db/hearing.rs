//! When the orchestrator could hear runners: the stretch of time in which it has been up with
//! its database reachable, without a gap (docs/decisions.md, "Reliability"). Silence only
//! counts within it: a runner whose heartbeats could not have been received is not silent.

use sqlx::PgExecutor;
use time::OffsetDateTime;

/// Records a periodic check and returns since when the orchestrator has been listening. A new
/// stretch starts now when `new_stretch` says so (the first check of a process, which was not
/// listening before it started, or the first after a failed check), and after a gap of more
/// than `max_gap_secs` since the last check (the process or its database was away in
/// between).
pub async fn record_check(
    executor: impl PgExecutor<'_>,
    new_stretch: bool,
    max_gap_secs: f64,
) -> sqlx::Result<OffsetDateTime> {
    sqlx::query_scalar(
        "INSERT INTO orchestrator_hearing (id, listening_since, last_check_at) \
         VALUES (true, now(), now()) \
         ON CONFLICT (id) DO UPDATE SET \
             listening_since = CASE \
                 WHEN $1 OR orchestrator_hearing.last_check_at \
                     < now() - make_interval(secs => $2) THEN now() \
                 ELSE orchestrator_hearing.listening_since END, \
             last_check_at = now() \
         RETURNING listening_since",
    )
    .bind(new_stretch)
    .bind(max_gap_secs)
    .fetch_one(executor)
    .await
}

/// Since when the orchestrator has been listening; `None` before its first check.
pub async fn get_listening_since(
    executor: impl PgExecutor<'_>,
) -> sqlx::Result<Option<OffsetDateTime>> {
    sqlx::query_scalar("SELECT listening_since FROM orchestrator_hearing")
        .fetch_optional(executor)
        .await
}
