//! Names of files, folders and S3 keys that the runner, orchestrator, master script and site
//! agree on.
//!
//! A runner uploads a flat archive per task ([`RESULT_ARCHIVE`] or [`ERROR_ARCHIVE`]) to the
//! key the orchestrator issued ([`task_result_key`], [`task_error_key`]). The orchestrator
//! repackages every task into [`run_archive_key`], one [`task_folder`] per task, which the
//! master script unpacks into [`local_results_dir`].

use std::path::PathBuf;

/// The archive a runner uploads when its task completed.
pub const RESULT_ARCHIVE: &str = "result.tar.gz";

/// The archive a runner uploads when its task failed.
pub const ERROR_ARCHIVE: &str = "error.tar.gz";

/// ruby-bench's standard output for the task.
pub const OUTPUT_TXT: &str = "output.txt";

/// The stem passed to ruby-bench's `--out-name`; it writes `.txt`, `.json` and `.csv` files.
pub const RUBY_BENCH_OUT_NAME: &str = "ruby-bench";

/// ruby-bench's text report.
pub const RUBY_BENCH_TXT: &str = "ruby-bench.txt";

/// ruby-bench's JSON report.
pub const RUBY_BENCH_JSON: &str = "ruby-bench.json";

/// ruby-bench's CSV report.
pub const RUBY_BENCH_CSV: &str = "ruby-bench.csv";

/// The task's [`crate::TaskMeta`], in both archives.
pub const META_JSON: &str = "meta.json";

/// ruby-bench's standard error for the task, in `error.tar.gz`.
pub const STDERR_TXT: &str = "stderr.txt";

/// The task's [`crate::ErrorInfo`], in `error.tar.gz` (and in the task's folder of the run
/// archive for every failed task).
pub const ERROR_JSON: &str = "error.json";

/// What the orchestrator says about a failed task's unreadable `error.tar.gz`, in the task's
/// folder of the run archive when that folder already holds the runner's [`ERROR_JSON`].
pub const ARCHIVE_ERROR_JSON: &str = "archive-error.json";

/// A file at the root of ruby-bench-mini (`fixtures/ruby-bench-mini`) saying it is the
/// stand-in: results measured with it are marked in `meta.json` and on the website.
pub const RUBY_BENCH_STAND_IN_MARKER: &str = "STAND-IN";

/// The archive of a whole run, built by the orchestrator.
pub const RUN_ARCHIVE: &str = "results.tar.gz";

/// The directory the master script unpacks runs into, one subdirectory per run id.
pub const RESULTS_DIR: &str = "results";

/// The S3 key prefix of everything belonging to one run: `runs/<run_id>/`.
pub fn run_prefix(run_id: i64) -> String {
    format!("runs/{run_id}/")
}

/// The S3 key prefix of one task's uploads: `runs/<run_id>/tasks/<task_id>/`.
pub fn task_prefix(run_id: i64, task_id: i64) -> String {
    format!("{}tasks/{task_id}/", run_prefix(run_id))
}

/// The S3 key a task's `result.tar.gz` is uploaded to.
pub fn task_result_key(run_id: i64, task_id: i64) -> String {
    format!("{}{RESULT_ARCHIVE}", task_prefix(run_id, task_id))
}

/// The S3 key a task's `error.tar.gz` is uploaded to.
pub fn task_error_key(run_id: i64, task_id: i64) -> String {
    format!("{}{ERROR_ARCHIVE}", task_prefix(run_id, task_id))
}

/// The S3 key of a run's `results.tar.gz`.
pub fn run_archive_key(run_id: i64) -> String {
    format!("{}{RUN_ARCHIVE}", run_prefix(run_id))
}

/// The folder of one task inside `results.tar.gz` and `results/<run-id>/`:
/// `<instance_type>-<run>`.
pub fn task_folder(instance_type: &str, run: u32) -> String {
    format!("{instance_type}-{run}")
}

/// Splits a [`task_folder`] name into instance type and run, at the last `-` (instance types
/// may contain dashes, runs do not).
pub fn parse_task_folder(name: &str) -> Option<(&str, u32)> {
    let (instance_type, run) = name.rsplit_once('-')?;
    let digits_only = !run.is_empty() && run.bytes().all(|b| b.is_ascii_digit());
    let run = run.parse().ok().filter(|&n| digits_only && n >= 1)?;
    (!instance_type.is_empty()).then_some((instance_type, run))
}

/// Where the master script unpacks a run: `results/<run_id>`, relative to the repository.
pub fn local_results_dir(run_id: i64) -> PathBuf {
    PathBuf::from(RESULTS_DIR).join(run_id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_folders() {
        assert_eq!(
            task_result_key(1733945123, 42),
            "runs/1733945123/tasks/42/result.tar.gz"
        );
        assert_eq!(
            task_error_key(1733945123, 42),
            "runs/1733945123/tasks/42/error.tar.gz"
        );
        assert_eq!(
            run_archive_key(1733945123),
            "runs/1733945123/results.tar.gz"
        );
        assert_eq!(task_folder("c8g.medium", 2), "c8g.medium-2");
        assert_eq!(
            local_results_dir(1733945123),
            PathBuf::from("results/1733945123")
        );
        assert_eq!(format!("{RUBY_BENCH_OUT_NAME}.txt"), RUBY_BENCH_TXT);
        assert_eq!(format!("{RUBY_BENCH_OUT_NAME}.json"), RUBY_BENCH_JSON);
        assert_eq!(format!("{RUBY_BENCH_OUT_NAME}.csv"), RUBY_BENCH_CSV);
    }

    #[test]
    fn task_folders_parse_back() {
        assert_eq!(parse_task_folder("c8g.medium-2"), Some(("c8g.medium", 2)));
        assert_eq!(parse_task_folder("local-1cpu-13"), Some(("local-1cpu", 13)));
        assert_eq!(parse_task_folder("local-1cpu"), None);
        assert_eq!(parse_task_folder("c8g.medium-0"), None);
        assert_eq!(parse_task_folder("c8g.medium-+1"), None);
        assert_eq!(parse_task_folder("-1"), None);
        assert_eq!(parse_task_folder("output.txt"), None);
    }
}
