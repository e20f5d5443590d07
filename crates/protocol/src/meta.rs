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

/// A benchmark image the runner derived from the task's image, once per host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DerivedImage {
    /// Its reference, e.g. `rcb-bench/ruby:3.4.7-0123abcd`.
    pub reference: String,
    /// Its id (`sha256:...`).
    pub id: String,
    /// The Debian packages it adds.
    pub packages: Vec<String>,
}

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
    /// The image the benchmark really ran in when the runner derived one from `image` with
    /// the packages ruby-bench needs; none when it ran in `image` itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived_image: Option<DerivedImage>,
    /// The ruby-bench git commit that ran, where known.
    #[serde(default)]
    pub ruby_bench_commit: Option<String>,
    /// The image the runner itself ran from, where known: which build of our code measured.
    /// Left out when unknown, so results written before it existed read and export the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_image: Option<RunnerImage>,
    /// True when the suite was ruby-bench-mini, the stand-in: its numbers are not ruby-bench's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ruby_bench_stand_in: bool,
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

/// The image a runner ran from, read from the Docker engine when the runner starts, so that
/// a number traces back to the code that measured it. The build side (`cargo xtask
/// deploy-images`) writes the labels named here; the runner reads them back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerImage {
    /// The reference the runner's image was started as, e.g. `rcb/runner:deploy-arm64`.
    pub reference: String,
    /// The image's id (`sha256:...`), unique to its content.
    #[serde(default)]
    pub id: Option<String>,
    /// The git commit the binary was built from; `-dirty` is appended when the work tree had
    /// uncommitted changes.
    #[serde(default)]
    pub git_commit: Option<String>,
    /// The cargo profile of the binary, e.g. `deploy`.
    #[serde(default)]
    pub profile: Option<String>,
    /// The Rust target the binary was built for, with the glibc it links against, e.g.
    /// `aarch64-unknown-linux-gnu.2.36`.
    #[serde(default)]
    pub target: Option<String>,
}

impl RunnerImage {
    /// The image label holding [`RunnerImage::git_commit`].
    pub const GIT_COMMIT_LABEL: &str = "rcb.git-commit";
    /// The image label holding [`RunnerImage::profile`].
    pub const PROFILE_LABEL: &str = "rcb.profile";
    /// The image label holding [`RunnerImage::target`].
    pub const TARGET_LABEL: &str = "rcb.target";
    /// The environment variable, set in the image, that names the runner's own image.
    pub const ENV: &str = "RUNNER_IMAGE";

    /// The identity of `reference` from its id and labels.
    pub fn from_labels(
        reference: &str,
        id: Option<String>,
        labels: &BTreeMap<String, String>,
    ) -> Self {
        let label = |name: &str| labels.get(name).cloned();
        Self {
            reference: reference.to_owned(),
            id,
            git_commit: label(Self::GIT_COMMIT_LABEL),
            profile: label(Self::PROFILE_LABEL),
            target: label(Self::TARGET_LABEL),
        }
    }
}

/// Why a task failed (`error.json` in `error.tar.gz`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// A short machine-readable kind of failure, the same as sent to `/fail`: a
    /// [`crate::ErrorType`] when this project wrote it, kept as text so that the site reads
    /// every run's results.
    pub error_type: String,
    /// What went wrong, for people.
    pub error_message: String,
    /// The exit code of the process that failed, if one exited.
    #[serde(default)]
    pub exit_code: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use time::macros::datetime;

    fn full_document() -> Value {
        json!({
            "schema_version": 1,
            "run_id": 1733945123,
            "task_id": 42,
            "provider": "aws",
            "instance_type": "c7i.large",
            "run": 2,
            "runner_id": "i-0abc123def456-slot1",
            "region": "us-east-1",
            "zone": "us-east-1a",
            "ruby_version": "3.4.7",
            "ruby_description": "ruby 3.4.7 (2025-10-08 revision 7a5688e2a2) +YJIT +PRISM [x86_64-linux]",
            "modes": ["yjit", "interp"],
            "cpu_model": "Intel(R) Xeon(R) Platinum 8488C",
            "pinned_cpu": 1,
            "smt_siblings": [0, 1],
            "kernel": "6.8.0-1021-aws",
            "cgroup_cpuset": "1",
            "image": "ruby:3.4.7",
            "image_id": "sha256:0123456789abcdef",
            "ruby_bench_commit": "4f1c2d3e",
            "runner_image": {
                "reference": "rcb/runner:deploy-arm64",
                "id": "sha256:fedcba9876543210",
                "git_commit": "a7ba3d1",
                "profile": "deploy",
                "target": "aarch64-unknown-linux-gnu.2.36"
            },
            "benchmark_categories": {"fib": "micro", "liquid-render": "headline", "nbody": "other"},
            "failed_benchmarks": ["ractor_ping"],
            "started_at": "2024-12-11T10:31:00Z",
            "finished_at": "2024-12-11T11:01:30.25Z",
            "cpu_steal_pct": 0.4
        })
    }

    #[test]
    fn full_document_round_trips() {
        let meta: TaskMeta = serde_json::from_value(full_document()).unwrap();
        assert_eq!(meta.provider, Provider::Aws);
        assert_eq!(meta.modes, [Mode::Yjit, Mode::Interp]);
        assert_eq!(meta.pinned_cpu, Some(1));
        assert!(meta.shares_core());
        assert_eq!(meta.category_of("fib"), Category::Micro);
        assert_eq!(meta.category_of("liquid-render"), Category::Headline);
        assert_eq!(meta.category_of("unlisted"), Category::Other);
        assert_eq!(meta.finished_at, datetime!(2024-12-11 11:01:30.25 UTC));
        assert_eq!(meta.duration(), time::Duration::seconds_f64(1830.25));
        assert_eq!(meta.cpu_steal_pct, Some(0.4));
        assert_eq!(serde_json::to_value(&meta).unwrap(), full_document());
    }

    #[test]
    fn minimal_document_gets_defaults() {
        let meta: TaskMeta = serde_json::from_value(json!({
            "run_id": 1733945123,
            "task_id": 7,
            "provider": "local",
            "instance_type": "local-1cpu",
            "run": 1,
            "ruby_version": "3.4.7",
            "started_at": "2024-12-11T10:31:00+01:00",
            "finished_at": "2024-12-11T10:32:00+01:00",
            "written_by_a_newer_runner": {"ignored": true}
        }))
        .unwrap();
        assert_eq!(meta.schema_version, TaskMeta::SCHEMA_VERSION);
        assert_eq!(meta.runner_id, "");
        assert_eq!(meta.runner_image, None);
        assert_eq!(meta.region, None);
        assert!(meta.modes.is_empty());
        assert!(meta.smt_siblings.is_empty());
        assert!(!meta.shares_core());
        assert!(meta.benchmark_categories.is_empty());
        assert!(meta.failed_benchmarks.is_empty());
        assert_eq!(meta.cpu_steal_pct, None);
        assert_eq!(meta.duration(), time::Duration::minutes(1));
    }

    #[test]
    fn nulls_and_unknown_categories_are_tolerated() {
        let mut document = full_document();
        document["benchmark_categories"] = json!({"a": null, "b": "ractor", "c": "headline"});
        document["region"] = Value::Null;
        document["smt_siblings"] = json!([3]);
        let meta: TaskMeta = serde_json::from_value(document).unwrap();
        assert_eq!(meta.category_of("a"), Category::Other);
        assert_eq!(meta.category_of("b"), Category::Other);
        assert_eq!(meta.category_of("c"), Category::Headline);
        assert_eq!(meta.region, None);
        assert!(!meta.shares_core());
    }

    #[test]
    fn documents_without_identity_are_rejected() {
        let mut document = full_document();
        document.as_object_mut().unwrap().remove("instance_type");
        let err = serde_json::from_value::<TaskMeta>(document).unwrap_err();
        assert_eq!(err.to_string(), "missing field `instance_type`");
    }

    #[test]
    fn error_info() {
        let body = json!({
            "error_type": "benchmark_crash",
            "error_message": "ruby-bench printed no report",
            "exit_code": 139
        });
        let info: ErrorInfo = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(info.exit_code, Some(139));
        assert_eq!(serde_json::to_value(&info).unwrap(), body);
        let info: ErrorInfo = serde_json::from_value(
            json!({"error_type": "pull_failed", "error_message": "no image"}),
        )
        .unwrap();
        assert_eq!(info.exit_code, None);
    }

    /// The committed synthetic results (`fixtures/results/<run-id>/<folder>/`) parse with
    /// these types, and each folder is named after its meta's instance type and run.
    #[test]
    fn committed_fixtures_parse() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/results");
        let runs = std::fs::read_dir(&root).unwrap_or_else(|err| {
            panic!(
                "{}: {err}; regenerate it with `ruby fixtures/ruby-bench-mini/generate_results.rb`",
                root.display()
            )
        });
        let mut checked = 0;
        for run in runs {
            let run = run.unwrap().path();
            if !run.is_dir() {
                continue;
            }
            for task in std::fs::read_dir(&run).unwrap() {
                let task = task.unwrap().path();
                let name = task.file_name().unwrap().to_str().unwrap().to_owned();
                let meta_path = task.join(crate::layout::META_JSON);
                if let Ok(text) = std::fs::read_to_string(&meta_path) {
                    let meta: TaskMeta = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("{}: {e}", meta_path.display()));
                    let folder = crate::layout::task_folder(&meta.instance_type, meta.run);
                    assert_eq!(folder, name);
                    assert_eq!(
                        crate::layout::parse_task_folder(&name),
                        Some((meta.instance_type.as_str(), meta.run))
                    );
                    checked += 1;
                }
                let error_path = task.join(crate::layout::ERROR_JSON);
                if let Ok(text) = std::fs::read_to_string(&error_path) {
                    serde_json::from_str::<ErrorInfo>(&text)
                        .unwrap_or_else(|e| panic!("{}: {e}", error_path.display()));
                }
            }
        }
        assert!(checked > 0, "no meta.json under {}", root.display());
    }
}
