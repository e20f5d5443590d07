//! The database layer: free functions taking `impl PgExecutor<'_>`, so that each works on the
//! pool or inside a transaction, and `*Model` rows read with runtime-checked queries (the test
//! suite runs every one of them against Postgres).

pub mod hearing;
pub mod run_history;
pub mod runs;
pub mod sessions;
pub mod tasks;

use std::fmt;

/// The id of a run: Unix seconds chosen by the master script or the orchestrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct RunId(pub i64);

/// The id of a task, unique across runs; used in `/tasks/{id}/...` paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, sqlx::Type)]
#[sqlx(transparent)]
pub struct TaskId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// True when `error` is a unique violation of the named constraint or index.
pub fn is_unique_violation(error: &sqlx::Error, constraint: &str) -> bool {
    error
        .as_database_error()
        .is_some_and(|db| db.is_unique_violation() && db.constraint() == Some(constraint))
}
