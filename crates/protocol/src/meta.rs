//! `meta.json` and `error.json`, written by the runner into a task's archive.
//!
//! The site treats `meta.json` as optional and possibly partial, so reading is lenient: unknown
//! fields are ignored and every field that has a sensible empty value may be missing. Only the
//! fields the runner always knows from its claim and its clock are required: `run_id`,
//! `task_id`, `provider`, `instance_type`, `run`, `ruby_version`, `started_at`, `finished_at`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::{Category, Mode, Provider};

/// Facts about one task's ruby-bench run and the machine it ran on (`meta.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskMeta {
    /// The version of this layout; [`TaskMeta::SCHEMA_VERSION`] when written by this crate.
    #[serde(default = "default_schema_version")]
    pub schema_version: u32,
    /// The run the task belongs to.
    pub run_id: i64,
    /// The task's id in the orchestrator.
    pub task_id: i64,
    /// Where the task ran.
    pub provider: Provider,
    /// The instance type (or local label) it ran on.
    pub instance_type: String,
    /// Which run of its instance type it was, from 1.
    pub run: u32,
    /// The runner (and slot) that ran it.
    #[serde(default)]
    pub runner_id: String,
    /// The cloud region, where known.
    #[serde(default)]
    pub region: Option<String>,
    /// The availability zone, where known.
    #[serde(default)]
    pub zone: Option<String>,
    /// The Ruby version the run asked for.
    pub ruby_version: String,
    /// What `ruby -v` printed inside the benchmark container.
    #[serde(default)]
    pub ruby_description: String,
    /// The modes ruby-bench ran.
    #[serde(default)]
    pub modes: Vec<Mode>,
    /// The CPU model name, e.g. from `/proc/cpuinfo`.
    #[serde(default)]
    pub cpu_model: Option<String>,
    /// The CPU the benchmark container was pinned to.
    #[serde(default)]
    pub pinned_cpu: Option<u32>,
    /// The pinned CPU's SMT siblings, itself included; more than one means a shared core.
    #[serde(default)]
    pub smt_siblings: Vec<u32>,
    /// The host's kernel release.
    #[serde(default)]
    pub kernel: Option<String>,
    /// The cpuset of the benchmark container's cgroup, e.g. `"1"`.
    #[serde(default)]
    pub cgroup_cpuset: Option<String>,
    /// The benchmark image, e.g. `ruby:3.4.7`.
    #[serde(default)]
    pub image: String,
    /// The benchmark image's id (`sha256:...`).
    #[serde(default)]
    pub image_id: Option<String>,
    /// The ruby-bench git commit that ran, where known.
    #[serde(default)]
    pub ruby_bench_commit: Option<String>,
    /// Each benchmark's category from ruby-bench's `benchmarks.yml` (none = other).
    #[serde(default)]
    pub benchmark_categories: BTreeMap<String, Category>,
    /// Benchmarks that failed (N/A rows) while the report still came out.
    #[serde(default)]
    pub failed_benchmarks: Vec<String>,
    /// When the task started on the runner.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When the task finished on the runner.
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    /// CPU steal time over the run as a percentage of CPU time, where measurable.
    #[serde(default)]
    pub cpu_steal_pct: Option<f64>,
}

fn default_schema_version() -> u32 {
    TaskMeta::SCHEMA_VERSION
}

impl TaskMeta {
    /// The `schema_version` this crate writes.
    pub const SCHEMA_VERSION: u32 = 1;

    /// True when the pinned CPU shares its physical core with another vCPU (SMT siblings).
    pub fn shares_core(&self) -> bool {
        self.smt_siblings.len() > 1
    }

    /// The category of `benchmark`; benchmarks not listed count as [`Category::Other`].
    pub fn category_of(&self, benchmark: &str) -> Category {
        self.benchmark_categories
            .get(benchmark)
            .copied()
            .unwrap_or_default()
    }

    /// How long the task ran on the runner.
    pub fn duration(&self) -> time::Duration {
        self.finished_at - self.started_at
    }
}

/// Why a task failed (`error.json` in `error.tar.gz`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// A short machine-readable kind of failure, the same as sent to `/fail`.
    pub error_type: String,
    /// What went wrong, for people.
    pub error_message: String,
    /// The exit code of the process that failed, if one exited.
    #[serde(default)]
    pub exit_code: Option<i32>,
}
