//! From tasks to what the pages show: per instance type and benchmark estimates, ratios with
//! confidence intervals, ties, geometric-mean summaries, price-performance, provenance and
//! noise flags.
//!
//! The unit of replication is the run (one task on a fresh machine): with two or more runs of an
//! instance type, its estimate for a benchmark is the geometric mean of the run means and the
//! interval comes from the spread between runs. With a single run, the spread of that run's
//! iterations stands in, which understates machine-to-machine variation; the pages say so.

pub mod value;
pub mod yjit;

use std::collections::{BTreeMap, BTreeSet};

use protocol::Category;

use crate::load::{Outcome, Run, Task};
use crate::prices::{Price, PriceBook, Prices};
use crate::report::{Measurement, Report, Source};
use crate::stats::{self, LogEstimate, Ratio};
use value::ValueRow;
use yjit::YjitGains;

/// A run whose median within-run relative stddev exceeds this is flagged as noisy (percent).
pub const NOISY_STDDEV_PCT: f64 = 5.0;

/// A task with more CPU steal than this is flagged (percent of CPU time).
pub const STEAL_PCT: f64 = 1.0;

/// What the builder was asked to compare against.
#[derive(Debug, Clone, Default)]
pub struct AnalysisSettings {
    /// The instance type speeds are also shown relative to.
    pub baseline: Option<String>,
    /// The user's prices file, which overrides every other price.
    pub prices: Option<Prices>,
}

/// An instance type's position in [`RunView::types`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TypeId(pub(crate) usize);

/// One value per instance type of a run, absent where the type has none.
#[derive(Debug, Clone)]
pub struct PerType<T> {
    values: Vec<Option<T>>,
}

impl<T> PerType<T> {
    /// Computes the value of each of `count` types.
    pub fn from_fn(count: usize, mut value: impl FnMut(TypeId) -> Option<T>) -> Self {
        Self {
            values: (0..count).map(|i| value(TypeId(i))).collect(),
        }
    }

    /// The value of one type.
    pub fn get(&self, id: TypeId) -> Option<&T> {
        self.values.get(id.0).and_then(Option::as_ref)
    }

    /// The types that have a value, in type order.
    pub fn iter(&self) -> impl Iterator<Item = (TypeId, &T)> {
        self.values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_ref().map(|v| (TypeId(i), v)))
    }

    /// Every slot, present or not, in type order.
    pub fn slots(&self) -> impl Iterator<Item = (TypeId, Option<&T>)> {
        self.values
            .iter()
            .enumerate()
            .map(|(i, v)| (TypeId(i), v.as_ref()))
    }

    /// The types that have a value.
    pub fn ids(&self) -> BTreeSet<TypeId> {
        self.iter().map(|(id, _)| id).collect()
    }

    fn get_mut(&mut self, id: TypeId) -> Option<&mut T> {
        self.values.get_mut(id.0).and_then(Option::as_mut)
    }
}

/// The benchmark sets a geometric-mean summary covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SummaryCategory {
    /// Every benchmark.
    All,
    /// ruby-bench's headline benchmarks.
    Headline,
    /// The others.
    Other,
    /// Micro benchmarks.
    Micro,
}

impl SummaryCategory {
    /// Every summary, in display order.
    pub const ALL: [SummaryCategory; 4] = [Self::All, Self::Headline, Self::Other, Self::Micro];

    /// The summaries of one category each, in display order.
    pub const PARTS: [SummaryCategory; 3] = [Self::Headline, Self::Other, Self::Micro];

    /// The name pages and downloads use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Headline => "headline",
            Self::Other => "other",
            Self::Micro => "micro",
        }
    }

    /// True when a benchmark of `category` belongs to this summary.
    pub fn includes(self, category: Category) -> bool {
        match self {
            Self::All => true,
            Self::Headline => category == Category::Headline,
            Self::Other => category == Category::Other,
            Self::Micro => category == Category::Micro,
        }
    }
}

impl std::fmt::Display for SummaryCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mode: the name of one of ruby-bench's executables (a column of its report).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ModeName {
    /// `interp`: plain `ruby`, as this project runs it.
    Interp,
    /// `yjit`: `ruby --yjit`.
    Yjit,
    /// Another executable: ruby-bench's default `ruby`, or a name from `--executables`.
    Executable(String),
}

impl ModeName {
    /// The mode of a report column.
    pub fn new(name: &str) -> Self {
        match name {
            "interp" => Self::Interp,
            "yjit" => Self::Yjit,
            other => Self::Executable(other.to_owned()),
        }
    }

    /// The column's name, as in the report.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Interp => "interp",
            Self::Yjit => "yjit",
            Self::Executable(name) => name,
        }
    }

    /// What the heading says: which Ruby ran.
    pub fn describe(&self) -> String {
        match self {
            Self::Interp => "the interpreter (ruby, no JIT)".to_owned(),
            Self::Yjit => "YJIT (ruby --yjit)".to_owned(),
            Self::Executable(name) if name == "ruby" => {
                "executable ruby (ruby-bench's default name: ruby as found on PATH)".to_owned()
            }
            Self::Executable(name) => format!("executable {name} (named by --executables)"),
        }
    }
}

impl std::fmt::Display for ModeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CPU architecture, read from `ruby -v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    /// aarch64 (Graviton, Cobalt, Ampere).
    Arm,
    /// x86_64 (Xeon, EPYC).
    X86,
}

impl Arch {
    /// The architecture a `ruby -v` text names, if any.
    pub fn from_description(description: &str) -> Option<Self> {
        if description.contains("aarch64") || description.contains("arm64") {
            Some(Self::Arm)
        } else if description.contains("x86_64") {
            Some(Self::X86)
        } else {
            None
        }
    }

    /// A name for pages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Arm => "Arm",
            Self::X86 => "x86",
        }
    }
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
    /// YJIT's gain over the interpreter, when the run has both modes.
    pub yjit: Option<YjitGains>,
    /// Tasks that produced no report.
    pub failed_tasks: Vec<FailedTask>,
    /// Benchmarks that failed inside completed tasks.
    pub failed_benchmarks: Vec<FailedBenchmark>,
    /// The baseline instance type when it is part of this run.
    pub baseline: Option<String>,
    /// A baseline was asked for but is not in this run.
    pub missing_baseline: Option<String>,
}

impl RunView {
    /// The instance type with this id.
    pub fn type_view(&self, id: TypeId) -> &TypeView {
        &self.types[id.0]
    }

    /// Every type's id, in name order.
    pub fn type_ids(&self) -> impl Iterator<Item = TypeId> + use<> {
        (0..self.types.len()).map(TypeId)
    }

    /// The types with their ids.
    pub fn types_with_ids(&self) -> impl Iterator<Item = (TypeId, &TypeView)> {
        self.types.iter().enumerate().map(|(i, t)| (TypeId(i), t))
    }

    /// The id of the baseline type, when it is in this run.
    pub fn baseline_id(&self) -> Option<TypeId> {
        let baseline = self.baseline.as_deref()?;
        self.types_with_ids()
            .find(|(_, t)| t.name == baseline)
            .map(|(id, _)| id)
    }

    /// True when `id` is the baseline type.
    pub fn is_baseline(&self, id: TypeId) -> bool {
        self.baseline.as_deref() == Some(self.type_view(id).name.as_str())
    }

    /// The mode the verdict speaks of: YJIT when the run has it (what a buyer deploys), else
    /// the first mode.
    pub fn lead_mode(&self) -> Option<&ModeView> {
        self.modes
            .iter()
            .find(|m| m.mode == ModeName::Yjit)
            .or(self.modes.first())
    }

    /// Every benchmark of any mode, sorted by name.
    pub fn benchmark_names(&self) -> Vec<&str> {
        let names: BTreeSet<&str> = self
            .modes
            .iter()
            .flat_map(|m| m.benchmarks.iter().map(|b| b.name.as_str()))
            .collect();
        names.into_iter().collect()
    }
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
    /// Some run was measured with ruby-bench-mini, the stand-in, not ruby-bench.
    pub stand_in: bool,
    /// The CPU architecture, when `ruby -v` names it.
    pub arch: Option<Arch>,
    /// Some run was pinned to a CPU that shares its core with another vCPU.
    pub shared_core: bool,
    /// The highest CPU steal of its runs.
    pub max_steal_pct: Option<f64>,
    /// Some run was noisy (median relative stddev above [`NOISY_STDDEV_PCT`]).
    pub noisy: bool,
    /// The on-demand price, when a prices table lists the type.
    pub price: Option<Price>,
    /// The mean wall-clock time of one completed task (one pass of the suite), in seconds,
    /// when meta.json gives start and end.
    pub pass_seconds: Option<f64>,
}

impl TypeView {
    /// True for results of the local Docker provider.
    pub fn is_local(&self) -> bool {
        self.provider == "local"
    }

    /// The price per hour, when known.
    pub fn usd_per_hour(&self) -> Option<f64> {
        self.price.as_ref().map(|p| p.usd_per_hour)
    }

    /// What one pass of the benchmark suite costs on this type: its time × the hourly price.
    pub fn pass_cost_usd(&self) -> Option<f64> {
        Some(self.pass_seconds? / 3600.0 * self.usd_per_hour()?)
    }

    /// Warnings a buyer should see next to the numbers.
    pub fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if self.is_local() {
            flags.push("local Docker — not a cloud machine".to_owned());
        }
        if self.stand_in {
            flags.push("ruby-bench-mini stand-in — not ruby-bench numbers".to_owned());
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
    /// The mode (ruby-bench's executable name).
    pub mode: ModeName,
    /// Benchmarks: headline, other, micro, alphabetical within each.
    pub benchmarks: Vec<BenchView>,
    /// Which types the summaries and rankings compare, over which benchmarks.
    pub coverage: Coverage,
    /// Geometric-mean summaries, one per category that has benchmarks in the common set.
    pub summaries: Vec<Summary>,
    /// Instance types ranked by their overall geometric mean, fastest first.
    pub ranking: Vec<RankRow>,
    /// Priced instance types ranked by speed per dollar, best value first.
    pub value_ranking: Vec<ValueRow>,
}

impl ModeView {
    /// The summary of one category, when it has benchmarks.
    pub fn summary(&self, category: SummaryCategory) -> Option<&Summary> {
        self.summaries.iter().find(|s| s.category == category)
    }

    /// The summary over every common benchmark.
    pub fn overall(&self) -> Option<&Summary> {
        self.summary(SummaryCategory::All)
    }

    /// The benchmark named `name`.
    pub fn benchmark(&self, name: &str) -> Option<&BenchView> {
        self.benchmarks.iter().find(|b| b.name == name)
    }
}

/// The types a mode's summaries compare: those that share the most benchmarks.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    /// The types compared.
    pub types: BTreeSet<TypeId>,
    /// The types left out because they lack benchmarks the others share (empty when every type
    /// is compared).
    pub left_out: Vec<TypeId>,
}

impl Coverage {
    /// True when no benchmark is common to every type of the run.
    pub fn is_partial(&self) -> bool {
        !self.left_out.is_empty()
    }
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
    /// One cell per instance type that has data (failed or absent types have none).
    pub cells: PerType<Cell>,
    /// The fastest instance type.
    pub best: Option<TypeId>,
}

/// One run's numbers for a benchmark and mode.
#[derive(Debug, Clone)]
pub struct RunSample {
    /// The run number.
    pub run: u32,
    /// The mean of its iterations, in ms.
    pub mean_ms: f64,
    /// Every iteration, in ms (empty when read from a text table).
    pub iterations_ms: Vec<f64>,
}

/// One benchmark, mode and instance type.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The estimate on log times.
    pub estimate: LogEstimate,
    /// What the estimate is built from.
    pub basis: Basis,
    /// Each run's numbers, by run number.
    pub runs: Vec<RunSample>,
    /// The sample stddev of the run means, percent (two or more runs).
    pub between_run_pct: Option<f64>,
    /// The mean of the runs' within-run stddevs, percent.
    pub within_run_pct: f64,
    /// Speed relative to the fastest type on this benchmark.
    pub vs_best: Ratio,
    /// Speed relative to the baseline type.
    pub vs_baseline: Option<Ratio>,
}

impl Cell {
    /// Each run's mean, `(run, ms)`.
    pub fn run_means(&self) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.runs.iter().map(|r| (r.run, r.mean_ms))
    }
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
    /// Which benchmarks it covers.
    pub category: SummaryCategory,
    /// The benchmarks every compared instance type completed in this category.
    pub benchmarks: Vec<String>,
    /// One per compared instance type.
    pub cells: PerType<GeoCell>,
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
    /// The instance type.
    pub type_id: TypeId,
    /// The overall summary cell.
    pub overall: GeoCell,
    /// Per category (headline, other, micro): speed relative to the fastest, if summarised.
    pub by_category: BTreeMap<SummaryCategory, Ratio>,
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

fn report(task: &Task) -> Option<&Report> {
    match &task.outcome {
        Outcome::Completed(report) => Some(report),
        Outcome::Failed { .. } => None,
    }
}

/// The tasks of one instance type, in the order of [`RunView::types`].
struct TypeTasks<'a> {
    tasks: Vec<Vec<&'a Task>>,
}

impl<'a> TypeTasks<'a> {
    fn of(&self, id: TypeId) -> &[&'a Task] {
        &self.tasks[id.0]
    }

    fn count(&self) -> usize {
        self.tasks.len()
    }
}

/// What a run's tasks say about the run as a whole.
#[derive(Default)]
struct RunFacts {
    modes: Vec<String>,
    categories: BTreeMap<String, Category>,
    ruby_versions: BTreeSet<String>,
    date: Option<String>,
    failed_tasks: Vec<FailedTask>,
    failed_benchmarks: Vec<FailedBenchmark>,
}

impl RunFacts {
    fn gather(run: &Run) -> Self {
        let mut facts = Self::default();
        for task in &run.tasks {
            facts.add_meta(task);
            match &task.outcome {
                Outcome::Completed(report) => {
                    for m in &report.modes {
                        if !facts.modes.contains(m) {
                            facts.modes.push(m.clone());
                        }
                    }
                    facts.failed_benchmarks.extend(failed_benchmarks(task));
                }
                Outcome::Failed { error, output_tail } => facts.failed_tasks.push(FailedTask {
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
        if facts.ruby_versions.is_empty() {
            // Without meta.json, the version in `ruby -v` is the best we have.
            for report in run.tasks.iter().filter_map(report) {
                for d in report.descriptions.values() {
                    if let Some(v) = d.split_whitespace().nth(1) {
                        facts.ruby_versions.insert(v.to_owned());
                    }
                }
            }
        }
        facts
    }

    fn add_meta(&mut self, task: &Task) {
        let Some(meta) = &task.meta else { return };
        self.ruby_versions.insert(meta.ruby_version.clone());
        for (b, c) in &meta.benchmark_categories {
            self.categories.insert(b.clone(), *c);
        }
        let started = meta.started_at.date().to_string();
        if self.date.as_ref().is_none_or(|d| started < *d) {
            self.date = Some(started);
        }
    }
}

fn failed_benchmarks(task: &Task) -> impl Iterator<Item = FailedBenchmark> + '_ {
    failed_pairs(task)
        .into_iter()
        .map(move |(mode, bench)| FailedBenchmark {
            folder: task.folder.clone(),
            instance_type: task.instance_type.clone(),
            mode,
            error: task
                .benchmark_errors
                .get(&bench)
                .cloned()
                .unwrap_or_default(),
            benchmark: bench,
        })
}

/// Analyses one run. `shipped` is the price table that ships with the builder.
pub fn analyse_run(run: &Run, settings: &AnalysisSettings, shipped: &Prices) -> RunView {
    let mut by_type: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
    for task in &run.tasks {
        by_type
            .entry(task.instance_type.as_str())
            .or_default()
            .push(task);
    }
    let facts = RunFacts::gather(run);
    let prices = PriceBook::new(settings.prices.as_ref(), run.prices.as_ref(), shipped);
    let types: Vec<TypeView> = by_type
        .iter()
        .map(|(name, tasks)| type_view(name, tasks, &prices))
        .collect();
    let is_present = |b: &String| types.iter().any(|t| &t.name == b);
    let baseline = settings.baseline.clone().filter(is_present);
    let missing_baseline = settings.baseline.clone().filter(|b| !is_present(b));
    let type_tasks = TypeTasks {
        tasks: by_type.into_values().collect(),
    };
    let baseline_id = baseline
        .as_ref()
        .and_then(|b| types.iter().position(|t| &t.name == b))
        .map(TypeId);
    let context = ModeContext {
        type_tasks: &type_tasks,
        types: &types,
        categories: &facts.categories,
        baseline: baseline_id,
    };
    let modes: Vec<ModeView> = facts.modes.iter().map(|m| context.mode_view(m)).collect();
    let yjit = yjit::gains(&modes, &types);
    RunView {
        id: run.id.clone(),
        ruby_versions: facts.ruby_versions.into_iter().collect(),
        date: facts.date,
        types,
        modes,
        yjit,
        failed_tasks: facts.failed_tasks,
        failed_benchmarks: facts.failed_benchmarks,
        baseline,
        missing_baseline,
    }
}

/// The (mode, benchmark) pairs that failed in a completed task: from the report, and the
/// benchmarks meta.json lists as failed that have no number in some mode.
fn failed_pairs(task: &Task) -> BTreeSet<(String, String)> {
    let Some(report) = report(task) else {
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

fn type_view(name: &str, tasks: &[&Task], prices: &PriceBook<'_>) -> TypeView {
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
    let ruby_descriptions = distinct(metas.iter().map(|m| Some(m.ruby_description.clone())));
    let arch = ruby_descriptions
        .iter()
        .map(String::as_str)
        .chain(
            tasks
                .iter()
                .filter_map(|t| report(t))
                .flat_map(|r| r.descriptions.values().map(String::as_str)),
        )
        .find_map(Arch::from_description);
    TypeView {
        name: name.to_owned(),
        slug: slug(name),
        cpu_models: distinct(metas.iter().map(|m| m.cpu_model.clone())),
        kernels: distinct(metas.iter().map(|m| m.kernel.clone())),
        ruby_descriptions,
        ruby_bench_commits: distinct(metas.iter().map(|m| m.ruby_bench_commit.clone())),
        stand_in: metas.iter().any(|m| m.ruby_bench_stand_in),
        arch,
        shared_core: metas.iter().any(|m| m.shares_core()),
        max_steal_pct: metas
            .iter()
            .filter_map(|m| m.cpu_steal_pct)
            .reduce(f64::max),
        noisy: runs
            .iter()
            .any(|r| r.median_stddev_pct.is_some_and(|s| s > NOISY_STDDEV_PCT)),
        price: prices.lookup(&provider, name, &plain_regions),
        pass_seconds: pass_seconds(tasks),
        regions,
        provider,
        runs,
    }
}

/// The mean duration of the completed tasks that have start and end times.
fn pass_seconds(tasks: &[&Task]) -> Option<f64> {
    let durations: Vec<f64> = tasks
        .iter()
        .filter(|t| report(t).is_some())
        .filter_map(|t| t.meta.as_ref())
        .map(|m| (m.finished_at - m.started_at).as_seconds_f64())
        .filter(|s| *s > 0.0)
        .collect();
    (!durations.is_empty()).then(|| durations.iter().sum::<f64>() / durations.len() as f64)
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
    TaskView {
        run: task.run,
        folder: task.folder.clone(),
        status,
        cpu_model: meta.and_then(|m| m.cpu_model.clone()).unwrap_or_default(),
        cpu: meta.map_or_else(String::new, pinned_cpu_text),
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

/// The pinned CPU and its SMT siblings, e.g. `1 (siblings 0,1)`.
fn pinned_cpu_text(meta: &protocol::TaskMeta) -> String {
    let Some(cpu) = meta.pinned_cpu else {
        return String::new();
    };
    let siblings = meta
        .smt_siblings
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    if siblings.is_empty() {
        cpu.to_string()
    } else {
        format!("{cpu} (siblings {siblings})")
    }
}

/// What every mode of a run is analysed against.
struct ModeContext<'a> {
    type_tasks: &'a TypeTasks<'a>,
    types: &'a [TypeView],
    categories: &'a BTreeMap<String, Category>,
    baseline: Option<TypeId>,
}

impl ModeContext<'_> {
    fn mode_view(&self, mode: &str) -> ModeView {
        let benchmarks: Vec<BenchView> = self
            .benchmark_names(mode)
            .iter()
            .map(|(name, category)| self.bench_view(mode, name, *category))
            .collect();
        let coverage = coverage(&benchmarks, self.type_tasks.count());
        let summaries: Vec<Summary> = SummaryCategory::ALL
            .into_iter()
            .filter_map(|category| {
                let members: Vec<&BenchView> = benchmarks
                    .iter()
                    .filter(|b| category.includes(b.category))
                    .filter(|b| coverage.types.is_subset(&b.cells.ids()))
                    .collect();
                (!members.is_empty()).then(|| self.summary(mode, category, &members, &coverage))
            })
            .collect();
        let ranking = self.ranking(&summaries);
        let value_ranking = value::rank(&ranking, self.types);
        ModeView {
            mode: ModeName::new(mode),
            benchmarks,
            coverage,
            summaries,
            ranking,
            value_ranking,
        }
    }

    /// The mode's benchmarks with their categories: headline, other, micro, alphabetical
    /// within each.
    fn benchmark_names(&self, mode: &str) -> Vec<(String, Category)> {
        let mut names = BTreeSet::new();
        for report in self
            .type_tasks
            .tasks
            .iter()
            .flatten()
            .filter_map(|t| report(t))
        {
            for (m, b) in report.measurements.keys().chain(report.failed.iter()) {
                if m == mode {
                    names.insert(b.clone());
                }
            }
        }
        let mut named: Vec<(String, Category)> = names
            .into_iter()
            .map(|b| {
                let category = self.categories.get(&b).copied().unwrap_or_default();
                (b, category)
            })
            .collect();
        named.sort_by(|(a, ca), (b, cb)| (category_rank(*ca), a).cmp(&(category_rank(*cb), b)));
        named
    }

    fn ranking(&self, summaries: &[Summary]) -> Vec<RankRow> {
        let Some(overall) = summaries
            .iter()
            .find(|s| s.category == SummaryCategory::All)
        else {
            return Vec::new();
        };
        let mut order: Vec<(TypeId, &GeoCell)> = overall.cells.iter().collect();
        order.sort_by(|(a, ca), (b, cb)| {
            ca.estimate
                .mean
                .total_cmp(&cb.estimate.mean)
                .then(self.types[a.0].name.cmp(&self.types[b.0].name))
        });
        let cost = |id: TypeId, cell: &GeoCell| {
            self.types[id.0]
                .usd_per_hour()
                .map(|p| p * cell.estimate.time_ms())
        };
        let cheapest = order
            .iter()
            .filter_map(|(id, cell)| cost(*id, cell))
            .reduce(f64::min);
        order
            .iter()
            .enumerate()
            .map(|(rank, (id, cell))| RankRow {
                rank: rank + 1,
                type_id: *id,
                overall: (*cell).clone(),
                by_category: summaries
                    .iter()
                    .filter(|s| s.category != SummaryCategory::All)
                    .filter_map(|s| s.cells.get(*id).map(|g| (s.category, g.vs_fastest)))
                    .collect(),
                relative_cost: cost(*id, cell).zip(cheapest).map(|(c, m)| c / m),
            })
            .collect()
    }

    fn bench_view(&self, mode: &str, name: &str, category: Category) -> BenchView {
        let key = (mode.to_owned(), name.to_owned());
        let mut cells = PerType::from_fn(self.type_tasks.count(), |id| {
            let measured: Vec<(u32, &Measurement)> = self
                .type_tasks
                .of(id)
                .iter()
                .filter_map(|t| report(t)?.measurements.get(&key).map(|m| (t.run, m)))
                .collect();
            cell(&measured)
        });
        let by_time = |(_, c): &(TypeId, &Cell)| c.estimate.mean;
        let best = cells
            .iter()
            .min_by(|a, b| by_time(a).total_cmp(&by_time(b)))
            .map(|(id, _)| id);
        let best_estimate = best.and_then(|b| cells.get(b).map(|c| c.estimate));
        let baseline_estimate = self.baseline.and_then(|b| cells.get(b).map(|c| c.estimate));
        for id in cells.ids() {
            let cell = cells.get_mut(id).expect("an id of a present cell");
            if let Some(best_estimate) = best_estimate {
                cell.vs_best = if Some(id) == best {
                    Ratio::ONE
                } else {
                    stats::speed_ratio(&cell.estimate, &best_estimate)
                };
            }
            cell.vs_baseline = baseline_estimate.map(|b| {
                if Some(id) == self.baseline {
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

    /// The geometric mean of each compared type's times over `members`. With two or more runs,
    /// each run gets a score (its mean log time over the benchmarks, a missing benchmark
    /// counting at the type's estimate) and the interval comes from the spread of run scores,
    /// which keeps the correlation between benchmarks measured on the same machine. With one
    /// run, the per-benchmark estimates are combined as independent.
    fn summary(
        &self,
        mode: &str,
        category: SummaryCategory,
        members: &[&BenchView],
        coverage: &Coverage,
    ) -> Summary {
        let estimates = PerType::from_fn(self.type_tasks.count(), |id| {
            if !coverage.types.contains(&id) {
                return None;
            }
            let cells: Vec<&Cell> = members.iter().filter_map(|b| b.cells.get(id)).collect();
            let completed: Vec<&Report> = self
                .type_tasks
                .of(id)
                .iter()
                .filter_map(|t| report(t))
                .collect();
            if completed.len() < 2 {
                return LogEstimate::average(&cells.iter().map(|c| c.estimate).collect::<Vec<_>>());
            }
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
        });
        Summary {
            category,
            benchmarks: members.iter().map(|b| b.name.clone()).collect(),
            cells: self.geo_cells(&estimates),
        }
    }

    fn geo_cells(&self, estimates: &PerType<LogEstimate>) -> PerType<GeoCell> {
        let fastest = estimates
            .iter()
            .map(|(_, e)| *e)
            .reduce(|a, b| if b.mean < a.mean { b } else { a });
        let baseline = self.baseline.and_then(|b| estimates.get(b).copied());
        PerType::from_fn(self.type_tasks.count(), |id| {
            let e = *estimates.get(id)?;
            let vs_fastest = match fastest {
                Some(f) if f.mean == e.mean => Ratio::ONE,
                Some(f) => stats::speed_ratio(&e, &f),
                None => Ratio::ONE,
            };
            let vs_baseline = baseline.map(|b| {
                if Some(id) == self.baseline {
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
    }
}

/// A type's cell for one benchmark from its runs' measurements.
fn cell(measured: &[(u32, &Measurement)]) -> Option<Cell> {
    let (_, first) = measured.first()?;
    let means: Vec<f64> = measured.iter().map(|(_, m)| m.mean_ms).collect();
    let (estimate, basis) = if measured.len() >= 2 {
        let logs: Vec<f64> = means.iter().map(|m| m.ln()).collect();
        (LogEstimate::from_logs(&logs)?, Basis::Runs)
    } else if first.iterations_ms.len() >= 2 {
        let logs: Vec<f64> = first.iterations_ms.iter().map(|m| m.ln()).collect();
        (LogEstimate::from_logs(&logs)?, Basis::Iterations)
    } else {
        (LogEstimate::from_logs(&[means[0].ln()])?, Basis::Single)
    };
    let within = measured.iter().map(|(_, m)| m.stddev_pct).sum::<f64>() / measured.len() as f64;
    Some(Cell {
        estimate,
        basis,
        between_run_pct: stats::relative_sample_stddev_pct(&means),
        runs: measured
            .iter()
            .map(|(run, m)| RunSample {
                run: *run,
                mean_ms: m.mean_ms,
                iterations_ms: m.iterations_ms.clone(),
            })
            .collect(),
        within_run_pct: within,
        vs_best: Ratio::ONE,
        vs_baseline: None,
    })
}

/// The types the summaries compare: every type when some benchmark is common to all of them;
/// otherwise the largest set of types that share a benchmark (then the one sharing the most
/// benchmarks), so a ranking is never empty while any benchmark has data.
fn coverage(benchmarks: &[BenchView], type_count: usize) -> Coverage {
    let sets: BTreeSet<BTreeSet<TypeId>> = benchmarks
        .iter()
        .map(|b| b.cells.ids())
        .filter(|s| !s.is_empty())
        .collect();
    let shared = |set: &BTreeSet<TypeId>| {
        benchmarks
            .iter()
            .filter(|b| set.is_subset(&b.cells.ids()))
            .count()
    };
    // Ties go to the first set in order, so the choice is deterministic.
    let best = sets
        .iter()
        .fold(None::<(&BTreeSet<TypeId>, usize)>, |best, set| {
            let count = shared(set);
            match best {
                Some((b, c)) if (b.len(), c) >= (set.len(), count) => Some((b, c)),
                _ => Some((set, count)),
            }
        });
    let types = best.map(|(set, _)| set.clone()).unwrap_or_default();
    let left_out = if types.is_empty() {
        Vec::new()
    } else {
        (0..type_count)
            .map(TypeId)
            .filter(|id| !types.contains(id))
            .collect()
    };
    Coverage { types, left_out }
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

    fn run(tasks: Vec<Task>) -> Run {
        Run {
            id: "1".to_owned(),
            tasks,
            prices: None,
        }
    }

    fn analyse(run: &Run) -> RunView {
        analyse_run(run, &AnalysisSettings::default(), &Prices::shipped())
    }

    fn fib_cell(view: &RunView, type_index: usize) -> &Cell {
        view.modes[0].benchmarks[0]
            .cells
            .get(TypeId(type_index))
            .unwrap()
    }

    fn add_benchmark(task: &mut Task, name: &str, ms: f64) {
        if let Outcome::Completed(report) = &mut task.outcome {
            let m = Measurement::from_iterations(vec![ms, ms * 1.01], None).unwrap();
            report
                .measurements
                .insert(("ruby".to_owned(), name.to_owned()), m);
        }
    }

    #[test]
    fn runs_iterations_and_single_numbers() {
        let run = run(vec![
            task("a", 1, &[100.0, 101.0, 99.0], Source::Json),
            task("a", 2, &[102.0, 103.0, 101.0], Source::Json),
            task("b", 1, &[200.0, 202.0, 198.0], Source::Json),
            task("c", 1, &[150.0, 151.0], Source::Text),
        ]);
        let view = analyse(&run);
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
        assert_eq!(view.modes[0].benchmarks[0].best, Some(TypeId(0)));
        assert!(a.between_run_pct.is_some() && b.between_run_pct.is_none());
        assert!((b.vs_best.value - 0.5).abs() < 0.01);
        assert!(b.vs_best.is_significant());
        // A text-only single run has no interval: neither a tie nor significant.
        assert_eq!(c.vs_best.ci, None);
        assert!(!c.vs_best.is_tie() && !c.vs_best.is_significant());
        let ranking: Vec<TypeId> = view.modes[0].ranking.iter().map(|r| r.type_id).collect();
        assert_eq!(ranking, [TypeId(0), TypeId(2), TypeId(1)]);
        assert!(view.types[1].runs.len() == 1 && view.failed_tasks.is_empty());
        assert_eq!(
            view.modes[0].mode.describe(),
            "executable ruby (ruby-bench's default name: ruby as found on PATH)"
        );
    }

    #[test]
    fn a_benchmark_missing_on_one_type_leaves_the_geomean() {
        let mut run = run(vec![
            task("a", 1, &[100.0, 101.0], Source::Json),
            task("b", 1, &[50.0, 51.0], Source::Json),
        ]);
        add_benchmark(&mut run.tasks[1], "nbody", 50.0);
        if let Outcome::Completed(report) = &mut run.tasks[0].outcome {
            report
                .failed
                .insert(("ruby".to_owned(), "nbody".to_owned()));
        }
        let view = analyse(&run);
        let all = &view.modes[0].summaries[0];
        assert_eq!(all.category, SummaryCategory::All);
        assert_eq!(all.benchmarks, ["fib"]);
        assert_eq!(view.failed_benchmarks.len(), 1);
        assert_eq!(view.failed_benchmarks[0].benchmark, "nbody");
        assert_eq!(slug("a/b c"), "a_b_c");
    }

    #[test]
    fn without_a_common_benchmark_the_largest_common_set_is_ranked() {
        // a and b share fib and nbody; c has only a benchmark of its own.
        let mut a = task("a", 1, &[100.0, 101.0], Source::Json);
        let mut b = task("b", 1, &[50.0, 51.0], Source::Json);
        let mut c = task("c", 1, &[70.0, 71.0], Source::Json);
        add_benchmark(&mut a, "nbody", 10.0);
        add_benchmark(&mut b, "nbody", 15.0);
        for t in [&mut c] {
            if let Outcome::Completed(report) = &mut t.outcome {
                let m = report
                    .measurements
                    .remove(&("ruby".to_owned(), "fib".to_owned()))
                    .unwrap();
                report
                    .measurements
                    .insert(("ruby".to_owned(), "only-c".to_owned()), m);
            }
        }
        let view = analyse(&run(vec![a, b, c]));
        let mode = &view.modes[0];
        assert!(mode.coverage.is_partial());
        assert_eq!(mode.coverage.left_out, [TypeId(2)]);
        assert_eq!(mode.overall().unwrap().benchmarks, ["fib", "nbody"]);
        let ranked: Vec<TypeId> = mode.ranking.iter().map(|r| r.type_id).collect();
        assert_eq!(ranked, [TypeId(1), TypeId(0)]);
    }
}
