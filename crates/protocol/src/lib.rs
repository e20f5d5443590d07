//! Types shared by the orchestrator, the task runner, xtask and the site builder.
//!
//! - [`config`]: the run config the master script posts to `POST /run/start`.
//! - [`api`]: every other request and response body of the orchestrator's API.
//! - [`meta`]: `meta.json` and `error.json`, written by the runner and read by the site.
//! - [`failure`]: the closed vocabularies of failed tasks, [`ErrorType`] and [`FailedBy`].
//! - [`archive`]: the one writer and reader of a task's flat `result.tar.gz` / `error.tar.gz`.
//! - [`layout`]: file names, S3 keys and folder names that several components agree on.
//! - [`validation`]: the error type every validating parser returns.
//!
//! Types that arrive from outside (the run config, the runner's request bodies) validate
//! themselves when parsed, through `from_json` or serde alike, and report the first problem in a
//! message that names the field. Types that this project writes and reads back (responses,
//! `meta.json`) parse leniently.

#[macro_use]
mod names;

pub mod api;
pub mod archive;
pub mod config;
pub mod failure;
pub mod layout;
pub mod meta;
pub mod validation;

pub use api::{
    ArchiveState, ArchiveStatus, ClaimRequest, ClaimResponse, ClaimedTask, CompleteRequest,
    ErrorBody, FailRequest, HeartbeatRequest, Phase, PresignedUrls, ReleaseRequest, RunState,
    RunStatus, StartRunResponse, StopRunResponse, TaskCounts, TaskStatus, TaskSummary,
    UploadUrlsRequest,
};
pub use config::{Category, ConfigError, Mode, Provider, RubyBenchSelection, RunConfig, TaskSpec};
pub use failure::{ErrorType, FailedBy};
pub use meta::{DerivedImage, ErrorInfo, RunnerImage, TaskMeta};
pub use names::ParseNameError;
pub use validation::ValidationError;

/// The ruby-bench commit every run uses unless told otherwise: the one the site's parsers,
/// ruby-bench-mini and the runner are written and tested against. Its one home is
/// `crates/protocol/ruby-bench.commit`, which `fish/cloud.fish` reads too.
pub const RUBY_BENCH_COMMIT: &str = include_str!("../ruby-bench.commit").trim_ascii();

/// The Debian packages cloud runners add to the official `ruby:<version>` image, once per
/// host, before benchmarking (docs/decisions.md, "The benchmark image"). Named from ruby-bench
/// itself: its CI and README install `libmagickwand-dev`; its headline benchmarks' Gemfiles
/// build native extensions against SQLite (activerecord, railsbench, sequel, lobsters,
/// shipit: `sqlite3`), libyaml (psych-load: `psych`), libffi (optcarrot: `ffi`) and libxml2
/// and libxslt (lobsters: `nokogiri`), with a compiler (lobsters: `bcrypt`), and Bundler
/// fetches git sources. Packages the image has already cost nothing.
pub const CLOUD_BENCH_PACKAGES: &[&str] = &[
    "build-essential",
    "git",
    "pkg-config",
    "libsqlite3-dev",
    "libyaml-dev",
    "libffi-dev",
    "libxml2-dev",
    "libxslt1-dev",
    "libmagickwand-dev",
];

#[cfg(test)]
mod tests {
    #[test]
    fn the_pinned_ruby_bench_commit_is_a_full_sha() {
        assert_eq!(super::RUBY_BENCH_COMMIT.len(), 40);
        assert!(
            super::RUBY_BENCH_COMMIT
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }
}
