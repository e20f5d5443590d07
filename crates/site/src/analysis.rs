//! From tasks to what the pages show: per instance type and benchmark estimates, ratios with
//! confidence intervals, ties, geometric-mean summaries, provenance and noise flags.
//!
//! The unit of replication is the run (one task on a fresh machine): with two or more runs of an
//! instance type, its estimate for a benchmark is the geometric mean of the run means and the
//! interval comes from the spread between runs. With a single run, the spread of that run's
//! iterations stands in, which understates machine-to-machine variation; the pages say so.

use std::collections::{BTreeMap, BTreeSet};

use protocol::Category;

use crate::load::{Outcome, Run, Task};
use crate::prices::Prices;
use crate::report::Source;
use crate::stats::{self, LogEstimate, Ratio};

/// A run whose median within-run relative stddev exceeds this is flagged as noisy (percent).
pub const NOISY_STDDEV_PCT: f64 = 5.0;

/// A task with more CPU steal than this is flagged (percent of CPU time).
pub const STEAL_PCT: f64 = 1.0;

/// The summary categories, in display order; `all` is every benchmark.
pub const SUMMARY_CATEGORIES: [&str; 4] = ["all", "headline", "other", "micro"];

/// What the builder was asked to compare against.
#[derive(Debug, Clone, Default)]
pub struct AnalysisSettings {
    /// The instance type speeds are also shown relative to.
    pub baseline: Option<String>,
    /// Hourly prices, for price-performance.
    pub prices: Option<Prices>,
}

/// One run of the benchmarks (`results/<run-id>/`), analysed.
#[derive(Debug, Clone)]
pub struct RunView {
    /// The run id (folder name).
    pub id: String,
    /// Ruby versions the tasks ran, sorted.
    pub ruby_versions: Vec<String>,
    /// The first task's start date (`YYYY-MM-DD`), when any meta.json says.
    pub date: Option<String>,
    /// The instance types, sorted by name.
    pub types: Vec<TypeView>,
    /// One analysis per mode (executable), in report order.
    pub modes: Vec<ModeView>,
    /// Tasks that produced no report.
    pub failed_tasks: Vec<FailedTask>,
    /// Benchmarks that failed inside completed tasks.
    pub failed_benchmarks: Vec<FailedBenchmark>,
    /// The baseline instance type when it is part of this run.
    pub baseline: Option<String>,
    /// A baseline was asked for but is not in this run.
    pub missing_baseline: Option<String>,
}

/// An instance type in a run, with its provenance.
#[derive(Debug, Clone)]
pub struct TypeView {
    /// The instance type.
    pub name: String,
    /// A file-name-safe version of the name.
    pub slug: String,
    /// `aws`, `azure`, `local` or `unknown` (no meta.json).
    pub provider: String,
    /// Each task of this type, by run number.
    pub runs: Vec<TaskView>,
    /// Distinct regions (and zones).
    pub regions: Vec<String>,
    /// Distinct CPU models.
    pub cpu_models: Vec<String>,
    /// Distinct kernels.
    pub kernels: Vec<String>,
    /// Distinct `ruby -v` texts.
    pub ruby_descriptions: Vec<String>,
    /// Distinct ruby-bench commits.
    pub ruby_bench_commits: Vec<String>,
    /// Some run was pinned to a CPU that shares its core with another vCPU.
    pub shared_core: bool,
    /// The highest CPU steal of its runs.
    pub max_steal_pct: Option<f64>,
    /// Some run was noisy (median relative stddev above [`NOISY_STDDEV_PCT`]).
    pub noisy: bool,
    /// The price per hour, when a prices file lists it.
    pub usd_per_hour: Option<f64>,
}

impl TypeView {
    /// True for results of the local Docker provider.
    pub fn is_local(&self) -> bool {
        self.provider == "local"
    }

    /// Warnings a buyer should see next to the numbers.
    pub fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if self.is_local() {
            flags.push("local Docker — not a cloud machine".to_owned());
        }
        if self.shared_core {
            flags.push("shared core (SMT)".to_owned());
        }
        if let Some(steal) = self.max_steal_pct.filter(|s| *s > STEAL_PCT) {
            flags.push(format!("CPU steal up to {steal:.1}%"));
        }
        if self.noisy {
            flags.push(format!(
                "noisy: a run above {NOISY_STDDEV_PCT:.0}% median stddev"
            ));
        }
        flags
    }
}

/// One task of an instance type, as the provenance table shows it.
#[derive(Debug, Clone)]
pub struct TaskView {
    /// The run number.
    pub run: u32,
    /// The folder name.
    pub folder: String,
    /// Completed (with its data source) or failed.
    pub status: String,
    /// CPU model.
    pub cpu_model: String,
    /// Pinned CPU and its SMT siblings, e.g. `1 (siblings 0,1)`.
    pub cpu: String,
    /// True when the pinned CPU shares its core.
    pub shared_core: bool,
    /// Kernel release.
    pub kernel: String,
    /// Region and zone.
    pub region: String,
    /// `ruby -v`.
    pub ruby_description: String,
    /// ruby-bench commit.
    pub ruby_bench_commit: String,
    /// CPU steal, percent.
    pub steal_pct: Option<f64>,
    /// The median over benchmarks and modes of the within-run relative stddev.
    pub median_stddev_pct: Option<f64>,
    /// Warnings for this task.
    pub flags: Vec<String>,
}

/// The analysis of one mode in one run.
#[derive(Debug, Clone)]
pub struct ModeView {
    /// The mode (ruby-bench's executable name), e.g. `yjit`.
    pub mode: String,
    /// Benchmarks: headline, other, micro, alphabetical within each.
    pub benchmarks: Vec<BenchView>,
    /// Geometric-mean summaries, one per category that has benchmarks common to every type.
    pub summaries: Vec<Summary>,
    /// Instance types ranked by their overall geometric mean, fastest first.
    pub ranking: Vec<RankRow>,
}

/// One benchmark in one mode across instance types.
#[derive(Debug, Clone)]
pub struct BenchView {
    /// The benchmark.
    pub name: String,
    /// A file-name-safe version of the name.
    pub slug: String,
    /// Its category.
    pub category: Category,
    /// One cell per instance type (same order as [`RunView::types`]); `None` when it has no
    /// data (failed or absent).
    pub cells: Vec<Option<Cell>>,
    /// The index of the fastest instance type.
    pub best: Option<usize>,
}

/// One benchmark, mode and instance type.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The estimate on log times.
    pub estimate: LogEstimate,
    /// What the estimate is built from.
    pub basis: Basis,
    /// Each run's mean, in ms.
    pub run_means: Vec<(u32, f64)>,
    /// The sample stddev of the run means, percent (two or more runs).
    pub between_run_pct: Option<f64>,
    /// The mean of the runs' within-run stddevs, percent.
    pub within_run_pct: f64,
    /// Speed relative to the fastest type on this benchmark.
    pub vs_best: Ratio,
    /// Speed relative to the baseline type.
    pub vs_baseline: Option<Ratio>,
}

/// What an estimate's variance comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Two or more runs: the spread between runs.
    Runs,
    /// One run: the spread of its iterations.
    Iterations,
    /// One run read from a text table: no interval.
    Single,
}

impl Basis {
    /// A short label.
    pub fn label(self) -> &'static str {
        match self {
            Basis::Runs => "runs",
            Basis::Iterations => "iterations of one run",
            Basis::Single => "one run, no iterations",
        }
    }
}

/// A geometric-mean summary over the benchmarks of a category.
#[derive(Debug, Clone)]
pub struct Summary {
    /// `all`, `headline`, `other` or `micro`.
    pub category: String,
    /// The benchmarks every instance type completed in this category.
    pub benchmarks: Vec<String>,
    /// One per instance type.
    pub cells: Vec<Option<GeoCell>>,
}

/// An instance type's geometric mean over a set of benchmarks.
#[derive(Debug, Clone)]
pub struct GeoCell {
    /// The estimate of the mean log time.
    pub estimate: LogEstimate,
    /// Speed relative to the fastest type.
    pub vs_fastest: Ratio,
    /// Speed relative to the baseline.
    pub vs_baseline: Option<Ratio>,
}

/// A line of the ranking.
#[derive(Debug, Clone)]
pub struct RankRow {
    /// 1-based rank.
    pub rank: usize,
    /// The instance type's index in [`RunView::types`].
    pub type_index: usize,
    /// The overall summary cell.
    pub overall: GeoCell,
    /// Per category (headline, other, micro): speed relative to the fastest, if summarised.
    pub by_category: Vec<Option<Ratio>>,
    /// Cost of the same work relative to the cheapest priced type (1 = cheapest).
    pub relative_cost: Option<f64>,
}

/// A task without a report.
#[derive(Debug, Clone)]
pub struct FailedTask {
    /// The folder.
    pub folder: String,
    /// `error_type`.
    pub error_type: String,
    /// `error_message`.
    pub error_message: String,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// The end of output.txt.
    pub output_tail: String,
}

/// A benchmark that failed inside a completed task.
#[derive(Debug, Clone)]
pub struct FailedBenchmark {
    /// The folder.
    pub folder: String,
    /// The instance type.
    pub instance_type: String,
    /// The mode.
    pub mode: String,
    /// The benchmark.
    pub benchmark: String,
    /// What output.txt shows about the failure (empty when it shows nothing).
    pub error: String,
}

/// Makes a name safe as a file name.
pub fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn category_rank(c: Category) -> u8 {
    match c {
        Category::Headline => 0,
        Category::Other => 1,
        Category::Micro => 2,
    }
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    })
}

fn distinct(values: impl Iterator<Item = Option<String>>) -> Vec<String> {
    values
        .flatten()
        .filter(|v| !v.is_empty())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Analyses one run.
pub fn analyse_run(run: &Run, settings: &AnalysisSettings) -> RunView {
    let mut by_type: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
    for task in &run.tasks {
        by_type
            .entry(task.instance_type.as_str())
            .or_default()
            .push(task);
    }
    let mut modes: Vec<String> = Vec::new();
    let mut categories: BTreeMap<String, Category> = BTreeMap::new();
    let mut failed_tasks = Vec::new();
    let mut failed_benchmarks = Vec::new();
    let mut ruby_versions = BTreeSet::new();
    let mut date: Option<String> = None;
    for task in &run.tasks {
        if let Some(meta) = &task.meta {
            ruby_versions.insert(meta.ruby_version.clone());
            for (b, c) in &meta.benchmark_categories {
                categories.insert(b.clone(), *c);
            }
            let started = meta.started_at.date().to_string();
            if date.as_ref().is_none_or(|d| started < *d) {
                date = Some(started);
            }
        }
        match &task.outcome {
            Outcome::Completed(report) => {
                for m in &report.modes {
                    if !modes.contains(m) {
                        modes.push(m.clone());
                    }
                }
                for (mode, bench) in failed_pairs(task) {
                    failed_benchmarks.push(FailedBenchmark {
                        folder: task.folder.clone(),
                        instance_type: task.instance_type.clone(),
                        mode,
                        error: task
                            .benchmark_errors
                            .get(&bench)
                            .cloned()
                            .unwrap_or_default(),
                        benchmark: bench,
                    });
                }
            }
            Outcome::Failed { error, output_tail } => failed_tasks.push(FailedTask {
                folder: task.folder.clone(),
                error_type: error
                    .as_ref()
                    .map_or_else(|| "unknown".to_owned(), |e| e.error_type.clone()),
                error_message: error.as_ref().map_or_else(
                    || "error.json could not be read".to_owned(),
                    |e| e.error_message.clone(),
                ),
                exit_code: error.as_ref().and_then(|e| e.exit_code),
                output_tail: output_tail.clone(),
            }),
        }
    }
    if ruby_versions.is_empty() {
        // Without meta.json, the version in `ruby -v` is the best we have.
        for task in &run.tasks {
            if let Outcome::Completed(report) = &task.outcome {
                for d in report.descriptions.values() {
                    if let Some(v) = d.split_whitespace().nth(1) {
                        ruby_versions.insert(v.to_owned());
                    }
                }
            }
        }
    }
    let types: Vec<TypeView> = by_type
        .iter()
        .map(|(name, tasks)| type_view(name, tasks, settings))
        .collect();
    let baseline = settings
        .baseline
        .clone()
        .filter(|b| types.iter().any(|t| &t.name == b));
    let missing_baseline = settings
        .baseline
        .clone()
        .filter(|b| !types.iter().any(|t| &t.name == b));
    let baseline_index = baseline
        .as_ref()
        .and_then(|b| types.iter().position(|t| &t.name == b));
    let type_tasks: Vec<&Vec<&Task>> = by_type.values().collect();
    let modes = modes
        .iter()
        .map(|mode| mode_view(mode, &type_tasks, &types, &categories, baseline_index))
        .collect();
    RunView {
        id: run.id.clone(),
        ruby_versions: ruby_versions.into_iter().collect(),
        date,
        types,
        modes,
        failed_tasks,
        failed_benchmarks,
        baseline,
        missing_baseline,
    }
}

/// The (mode, benchmark) pairs that failed in a completed task: from the report, and the
/// benchmarks meta.json lists as failed that have no number in some mode.
fn failed_pairs(task: &Task) -> BTreeSet<(String, String)> {
    let Outcome::Completed(report) = &task.outcome else {
        return BTreeSet::new();
    };
    let mut failed = report.failed.clone();
    if let Some(meta) = &task.meta {
        for bench in &meta.failed_benchmarks {
            for mode in &report.modes {
                let key = (mode.clone(), bench.clone());
                if !report.measurements.contains_key(&key) {
                    failed.insert(key);
                }
            }
        }
    }
    failed
}

fn type_view(name: &str, tasks: &[&Task], settings: &AnalysisSettings) -> TypeView {
    let metas: Vec<_> = tasks.iter().filter_map(|t| t.meta.as_ref()).collect();
    let provider = metas
        .first()
        .map_or_else(|| "unknown".to_owned(), |m| m.provider.as_str().to_owned());
    let runs: Vec<TaskView> = tasks.iter().map(|t| task_view(t)).collect();
    let region_of = |m: &protocol::TaskMeta| match (&m.region, &m.zone) {
        (Some(r), Some(z)) => Some(format!("{r} ({z})")),
        (Some(r), None) => Some(r.clone()),
        (None, Some(z)) => Some(z.clone()),
        (None, None) => None,
    };
    let regions = distinct(metas.iter().map(|m| region_of(m)));
    let plain_regions: Vec<String> = distinct(metas.iter().map(|m| m.region.clone()));
    let usd_per_hour = settings
        .prices
        .as_ref()
        .and_then(|p| p.lookup(&provider, name, &plain_regions));
    TypeView {
        name: name.to_owned(),
        slug: slug(name),
        cpu_models: distinct(metas.iter().map(|m| m.cpu_model.clone())),
        kernels: distinct(metas.iter().map(|m| m.kernel.clone())),
        ruby_descriptions: distinct(metas.iter().map(|m| Some(m.ruby_description.clone()))),
        ruby_bench_commits: distinct(metas.iter().map(|m| m.ruby_bench_commit.clone())),
        shared_core: metas.iter().any(|m| m.shares_core()),
        max_steal_pct: metas
            .iter()
            .filter_map(|m| m.cpu_steal_pct)
            .reduce(f64::max),
        noisy: runs
            .iter()
            .any(|r| r.median_stddev_pct.is_some_and(|s| s > NOISY_STDDEV_PCT)),
        regions,
        provider,
        runs,
        usd_per_hour,
    }
}

fn task_view(task: &Task) -> TaskView {
    let meta = task.meta.as_ref();
    let (status, median_stddev_pct, descriptions) = match &task.outcome {
        Outcome::Completed(report) => {
            let mut stddevs: Vec<f64> =
                report.measurements.values().map(|m| m.stddev_pct).collect();
            let status = match report.source {
                Source::Json => "completed (JSON raw data)",
                Source::Text => "completed (text table only)",
            };
            let descriptions = report
                .descriptions
                .values()
                .cloned()
                .collect::<Vec<_>>()
                .join("; ");
            (status.to_owned(), median(&mut stddevs), descriptions)
        }
        Outcome::Failed { .. } => ("failed: no report".to_owned(), None, String::new()),
    };
    let steal_pct = meta.and_then(|m| m.cpu_steal_pct);
    let shared_core = meta.is_some_and(|m| m.shares_core());
    let mut flags = Vec::new();
    if shared_core {
        flags.push("shared core".to_owned());
    }
    if let Some(s) = steal_pct.filter(|s| *s > STEAL_PCT) {
        flags.push(format!("steal {s:.1}%"));
    }
    if let Some(s) = median_stddev_pct.filter(|s| *s > NOISY_STDDEV_PCT) {
        flags.push(format!("noisy ({s:.1}% median stddev)"));
    }
    let cpu = meta
        .and_then(|m| m.pinned_cpu)
        .map_or_else(String::new, |c| {
            let siblings = meta
                .map(|m| {
                    m.smt_siblings
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            if siblings.is_empty() {
                c.to_string()
            } else {
                format!("{c} (siblings {siblings})")
            }
        });
    TaskView {
        run: task.run,
        folder: task.folder.clone(),
        status,
        cpu_model: meta.and_then(|m| m.cpu_model.clone()).unwrap_or_default(),
        cpu,
        shared_core,
        kernel: meta.and_then(|m| m.kernel.clone()).unwrap_or_default(),
        region: meta
            .map(|m| {
                [m.region.clone(), m.zone.clone()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" / ")
            })
            .unwrap_or_default(),
        ruby_description: meta
            .map(|m| m.ruby_description.clone())
            .filter(|d| !d.is_empty())
            .unwrap_or(descriptions),
        ruby_bench_commit: meta
            .and_then(|m| m.ruby_bench_commit.clone())
            .unwrap_or_default(),
        steal_pct,
        median_stddev_pct,
        flags,
    }
}

fn mode_view(
    mode: &str,
    type_tasks: &[&Vec<&Task>],
    types: &[TypeView],
    categories: &BTreeMap<String, Category>,
    baseline: Option<usize>,
) -> ModeView {
    let mut names = BTreeSet::new();
    for tasks in type_tasks {
        for task in tasks.iter() {
            if let Outcome::Completed(report) = &task.outcome {
                for (m, b) in report.measurements.keys().chain(report.failed.iter()) {
                    if m == mode {
                        names.insert(b.clone());
                    }
                }
            }
        }
    }
    let category_of = |b: &str| categories.get(b).copied().unwrap_or_default();
    let mut names: Vec<String> = names.into_iter().collect();
    names.sort_by(|a, b| {
        (category_rank(category_of(a)), a).cmp(&(category_rank(category_of(b)), b))
    });
    let benchmarks: Vec<BenchView> = names
        .iter()
        .map(|name| bench_view(mode, name, category_of(name), type_tasks, baseline))
        .collect();
    let mut summaries = Vec::new();
    for category in SUMMARY_CATEGORIES {
        let members: Vec<&BenchView> = benchmarks
            .iter()
            .filter(|b| category == "all" || b.category.as_str() == category)
            .filter(|b| b.cells.iter().all(Option::is_some))
            .collect();
        if members.is_empty() {
            continue;
        }
        summaries.push(summary(mode, category, &members, type_tasks, baseline));
    }
    let mut ranking = Vec::new();
    if let Some(overall) = summaries.iter().find(|s| s.category == "all") {
        let mut order: Vec<usize> = (0..types.len())
            .filter(|&i| overall.cells[i].is_some())
            .collect();
        order.sort_by(|&a, &b| {
            let ta = overall.cells[a]
                .as_ref()
                .map_or(f64::INFINITY, |c| c.estimate.mean);
            let tb = overall.cells[b]
                .as_ref()
                .map_or(f64::INFINITY, |c| c.estimate.mean);
            ta.total_cmp(&tb).then(types[a].name.cmp(&types[b].name))
        });
        let costs: Vec<Option<f64>> = order
            .iter()
            .map(|&i| {
                let time = overall.cells[i].as_ref()?.estimate.time_ms();
                types[i].usd_per_hour.map(|p| p * time)
            })
            .collect();
        let cheapest = costs.iter().flatten().copied().reduce(f64::min);
        for (rank, (&i, cost)) in order.iter().zip(costs).enumerate() {
            let by_category = SUMMARY_CATEGORIES[1..]
                .iter()
                .map(|c| {
                    summaries
                        .iter()
                        .find(|s| s.category == *c)
                        .and_then(|s| s.cells[i].as_ref())
                        .map(|g| g.vs_fastest)
                })
                .collect();
            ranking.push(RankRow {
                rank: rank + 1,
                type_index: i,
                overall: overall.cells[i]
                    .clone()
                    .expect("ranked types have a summary"),
                by_category,
                relative_cost: cost.zip(cheapest).map(|(c, m)| c / m),
            });
        }
    }
    ModeView {
        mode: mode.to_owned(),
        benchmarks,
        summaries,
        ranking,
    }
}

fn bench_view(
    mode: &str,
    name: &str,
    category: Category,
    type_tasks: &[&Vec<&Task>],
    baseline: Option<usize>,
) -> BenchView {
    let key = (mode.to_owned(), name.to_owned());
    let mut cells: Vec<Option<Cell>> = type_tasks
        .iter()
        .map(|tasks| {
            let measured: Vec<(u32, &crate::report::Measurement)> = tasks
                .iter()
                .filter_map(|t| match &t.outcome {
                    Outcome::Completed(r) => r.measurements.get(&key).map(|m| (t.run, m)),
                    Outcome::Failed { .. } => None,
                })
                .collect();
            if measured.is_empty() {
                return None;
            }
            let run_means: Vec<(u32, f64)> =
                measured.iter().map(|(r, m)| (*r, m.mean_ms)).collect();
            let means: Vec<f64> = run_means.iter().map(|(_, m)| *m).collect();
            let (estimate, basis) = if measured.len() >= 2 {
                let logs: Vec<f64> = means.iter().map(|m| m.ln()).collect();
                (LogEstimate::from_logs(&logs)?, Basis::Runs)
            } else if measured[0].1.iterations_ms.len() >= 2 {
                let logs: Vec<f64> = measured[0].1.iterations_ms.iter().map(|m| m.ln()).collect();
                (LogEstimate::from_logs(&logs)?, Basis::Iterations)
            } else {
                (LogEstimate::from_logs(&[means[0].ln()])?, Basis::Single)
            };
            let within =
                measured.iter().map(|(_, m)| m.stddev_pct).sum::<f64>() / measured.len() as f64;
            Some(Cell {
                estimate,
                basis,
                between_run_pct: stats::relative_sample_stddev_pct(&means),
                run_means,
                within_run_pct: within,
                vs_best: Ratio::ONE,
                vs_baseline: None,
            })
        })
        .collect();
    let best = (0..cells.len())
        .filter(|&i| cells[i].is_some())
        .min_by(|&a, &b| {
            let ta = cells[a].as_ref().map_or(f64::INFINITY, |c| c.estimate.mean);
            let tb = cells[b].as_ref().map_or(f64::INFINITY, |c| c.estimate.mean);
            ta.total_cmp(&tb)
        });
    let best_estimate = best.and_then(|b| cells[b].as_ref().map(|c| c.estimate));
    let baseline_estimate = baseline.and_then(|b| cells[b].as_ref().map(|c| c.estimate));
    for (i, cell) in cells.iter_mut().enumerate() {
        let Some(cell) = cell else { continue };
        if let Some(best_estimate) = best_estimate {
            cell.vs_best = if Some(i) == best {
                Ratio::ONE
            } else {
                stats::speed_ratio(&cell.estimate, &best_estimate)
            };
        }
        cell.vs_baseline = baseline_estimate.map(|b| {
            if Some(i) == baseline {
                Ratio::ONE
            } else {
                stats::speed_ratio(&cell.estimate, &b)
            }
        });
    }
    BenchView {
        name: name.to_owned(),
        slug: slug(name),
        category,
        cells,
        best,
    }
}

/// The geometric mean of a type's times over `members`. With two or more runs, each run gets a
/// score (its mean log time over the benchmarks, a missing benchmark counting at the type's
/// estimate) and the interval comes from the spread of run scores, which keeps the correlation
/// between benchmarks measured on the same machine. With one run, the per-benchmark estimates
/// are combined as independent.
fn summary(
    mode: &str,
    category: &str,
    members: &[&BenchView],
    type_tasks: &[&Vec<&Task>],
    baseline: Option<usize>,
) -> Summary {
    let estimates: Vec<Option<LogEstimate>> = type_tasks
        .iter()
        .enumerate()
        .map(|(i, tasks)| {
            let cells: Vec<&Cell> = members.iter().filter_map(|b| b.cells[i].as_ref()).collect();
            let completed: Vec<&crate::report::Report> = tasks
                .iter()
                .filter_map(|t| match &t.outcome {
                    Outcome::Completed(r) => Some(r),
                    Outcome::Failed { .. } => None,
                })
                .collect();
            if completed.len() >= 2 {
                let scores: Vec<f64> = completed
                    .iter()
                    .map(|r| {
                        members
                            .iter()
                            .zip(&cells)
                            .map(|(b, cell)| {
                                r.measurements
                                    .get(&(mode.to_owned(), b.name.clone()))
                                    .map_or(cell.estimate.mean, |m| m.mean_ms.ln())
                            })
                            .sum::<f64>()
                            / members.len() as f64
                    })
                    .collect();
                LogEstimate::from_logs(&scores)
            } else {
                LogEstimate::average(&cells.iter().map(|c| c.estimate).collect::<Vec<_>>())
            }
        })
        .collect();
    let fastest = estimates.iter().flatten().map(|e| e.mean).reduce(f64::min);
    let fastest_estimate = estimates
        .iter()
        .flatten()
        .find(|e| Some(e.mean) == fastest)
        .copied();
    let baseline_estimate = baseline.and_then(|b| estimates[b]);
    let cells = estimates
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let e = (*e)?;
            let vs_fastest = match fastest_estimate {
                Some(f) if f.mean == e.mean => Ratio::ONE,
                Some(f) => stats::speed_ratio(&e, &f),
                None => Ratio::ONE,
            };
            let vs_baseline = baseline_estimate.map(|b| {
                if Some(i) == baseline {
                    Ratio::ONE
                } else {
                    stats::speed_ratio(&e, &b)
                }
            });
            Some(GeoCell {
                estimate: e,
                vs_fastest,
                vs_baseline,
            })
        })
        .collect();
    Summary {
        category: category.to_owned(),
        benchmarks: members.iter().map(|b| b.name.clone()).collect(),
        cells,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::report::{Measurement, Report};

    fn task(instance_type: &str, run: u32, fib_ms: &[f64], source: Source) -> Task {
        let mut measurements = BTreeMap::new();
        let mut m = Measurement::from_iterations(fib_ms.to_vec(), None).unwrap();
        if source == Source::Text {
            m.iterations_ms.clear();
        }
        measurements.insert(("ruby".to_owned(), "fib".to_owned()), m);
        Task {
            folder: format!("{instance_type}-{run}"),
            instance_type: instance_type.to_owned(),
            run,
            meta: None,
            benchmark_errors: BTreeMap::new(),
            outcome: Outcome::Completed(Report {
                modes: vec!["ruby".to_owned()],
                descriptions: BTreeMap::new(),
                measurements,
                failed: BTreeSet::new(),
                harness: BTreeMap::new(),
                source,
            }),
        }
    }

    fn fib_cell(view: &RunView, type_index: usize) -> &Cell {
        view.modes[0].benchmarks[0].cells[type_index]
            .as_ref()
            .unwrap()
    }

    #[test]
    fn runs_iterations_and_single_numbers() {
        let run = Run {
            id: "1".to_owned(),
            tasks: vec![
                task("a", 1, &[100.0, 101.0, 99.0], Source::Json),
                task("a", 2, &[102.0, 103.0, 101.0], Source::Json),
                task("b", 1, &[200.0, 202.0, 198.0], Source::Json),
                task("c", 1, &[150.0, 151.0], Source::Text),
            ],
        };
        let view = analyse_run(&run, &AnalysisSettings::default());
        assert_eq!(
            view.types
                .iter()
                .map(|t| t.provider.as_str())
                .collect::<Vec<_>>(),
            ["unknown"; 3]
        );
        let (a, b, c) = (fib_cell(&view, 0), fib_cell(&view, 1), fib_cell(&view, 2));
        assert_eq!(
            (a.basis, b.basis, c.basis),
            (Basis::Runs, Basis::Iterations, Basis::Single)
        );
        assert_eq!(view.modes[0].benchmarks[0].best, Some(0));
        assert!(a.between_run_pct.is_some() && b.between_run_pct.is_none());
        assert!((b.vs_best.value - 0.5).abs() < 0.01);
        assert!(b.vs_best.is_significant());
        // A text-only single run has no interval: neither a tie nor significant.
        assert_eq!(c.vs_best.ci, None);
        assert!(!c.vs_best.is_tie() && !c.vs_best.is_significant());
        let ranking: Vec<usize> = view.modes[0].ranking.iter().map(|r| r.type_index).collect();
        assert_eq!(ranking, [0, 2, 1]);
        assert!(view.types[1].runs.len() == 1 && view.failed_tasks.is_empty());
    }

    #[test]
    fn a_benchmark_missing_on_one_type_leaves_the_geomean() {
        let mut run = Run {
            id: "1".to_owned(),
            tasks: vec![
                task("a", 1, &[100.0, 101.0], Source::Json),
                task("b", 1, &[50.0, 51.0], Source::Json),
            ],
        };
        if let Outcome::Completed(report) = &mut run.tasks[1].outcome {
            let m = report.measurements[&("ruby".to_owned(), "fib".to_owned())].clone();
            report
                .measurements
                .insert(("ruby".to_owned(), "nbody".to_owned()), m);
        }
        if let Outcome::Completed(report) = &mut run.tasks[0].outcome {
            report
                .failed
                .insert(("ruby".to_owned(), "nbody".to_owned()));
        }
        let view = analyse_run(&run, &AnalysisSettings::default());
        let all = &view.modes[0].summaries[0];
        assert_eq!(all.category, "all");
        assert_eq!(all.benchmarks, ["fib"]);
        assert_eq!(view.failed_benchmarks.len(), 1);
        assert_eq!(view.failed_benchmarks[0].benchmark, "nbody");
        assert_eq!(slug("a/b c"), "a_b_c");
    }
}
