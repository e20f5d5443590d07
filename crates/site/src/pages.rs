//! The HTML pages: askama templates fed with preformatted text, so every number on the site
//! has one fixed format.

use askama::Template;

use crate::analysis::{Cell, FailedBenchmark, FailedTask, GeoCell, ModeView, RunView, TypeView};
use crate::charts::{self, Bar, Line};
use crate::load::Problem;
use crate::stats::Ratio;

/// Formats a time in ms with a precision that suits its size.
pub fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// Formats a percentage.
pub fn fmt_pct(v: f64) -> String {
    format!("{v:.1}%")
}

/// A formatted ratio with its CSS class and tooltip.
#[derive(Debug, Clone, Default)]
pub struct RatioText {
    /// `0.812 [0.790–0.835]`, with `≈` for a tie.
    pub text: String,
    /// `best`, `tie`, `faster`, `slower` or `unknown`.
    pub class: String,
    /// A sort key.
    pub sort: String,
    /// What the number means.
    pub title: String,
}

/// Formats a speed ratio; `is_reference` marks the thing compared against.
pub fn ratio_text(ratio: Option<&Ratio>, is_reference: bool, reference: &str) -> RatioText {
    let Some(r) = ratio else {
        return RatioText {
            text: "—".to_owned(),
            class: "unknown".to_owned(),
            sort: "0".to_owned(),
            title: "no data".to_owned(),
        };
    };
    if is_reference {
        return RatioText {
            text: format!("1.000 ({reference})"),
            class: "best".to_owned(),
            sort: "1".to_owned(),
            title: format!("this is the {reference}"),
        };
    }
    let ci = r.ci.map_or_else(
        || " [no interval]".to_owned(),
        |(lo, hi)| format!(" [{lo:.3}–{hi:.3}]"),
    );
    let (prefix, class, title) = if r.is_tie() {
        (
            "≈ ",
            "tie",
            format!("not significantly different from the {reference} (95% interval contains 1)"),
        )
    } else if r.is_significant() && r.value > 1.0 {
        (
            "",
            "faster",
            format!("significantly faster than the {reference}"),
        )
    } else if r.is_significant() {
        (
            "",
            "slower",
            format!("significantly slower than the {reference}"),
        )
    } else {
        (
            "",
            "unknown",
            "no interval: a single run without per-iteration times".to_owned(),
        )
    };
    RatioText {
        text: format!("{prefix}{:.3}{ci}", r.value),
        class: class.to_owned(),
        sort: format!("{:.6}", r.value),
        title,
    }
}

fn ci_text(cell: &Cell) -> String {
    cell.estimate.time_ci_ms().map_or_else(
        || "—".to_owned(),
        |(lo, hi)| format!("{}–{}", fmt_ms(lo), fmt_ms(hi)),
    )
}

/// A ranking row.
pub struct RankText {
    rank: usize,
    name: String,
    slug: String,
    provider: String,
    vs_fastest: RatioText,
    vs_baseline: RatioText,
    by_category: Vec<RatioText>,
    price: String,
    relative_cost: String,
    flags: Vec<String>,
}

/// A benchmark × types matrix cell.
pub struct MatrixCell {
    present: bool,
    mean: String,
    ci: String,
    vs: String,
    class: String,
    sort: String,
    title: String,
}

/// A matrix row.
pub struct MatrixRow {
    name: String,
    slug: String,
    category: String,
    cells: Vec<MatrixCell>,
}

/// One mode on the run index.
pub struct ModeIndex {
    mode: String,
    overall_count: usize,
    ranking: Vec<RankText>,
    ranking_chart: String,
    summary_notes: Vec<String>,
    benchmarks: Vec<MatrixRow>,
}

/// A type in the run index's list.
pub struct TypeLink {
    name: String,
    slug: String,
    provider: String,
    cpu: String,
    flags: Vec<String>,
}

/// What the run index shows.
pub struct RunIndex {
    id: String,
    summary_line: String,
    other_runs: Vec<String>,
    missing_baseline: Option<String>,
    baseline: Option<String>,
    failure_count: usize,
    has_local: bool,
    has_prices: bool,
    modes: Vec<ModeIndex>,
    types: Vec<TypeLink>,
}

/// The index of a run (also the site's front page for the latest run).
#[derive(Template)]
#[template(path = "run_index.html")]
pub struct RunIndexTemplate<'a> {
    title: String,
    root: &'a str,
    base: &'a str,
    run: &'a RunIndex,
}

fn ranking_chart(run: &RunView, mode: &ModeView) -> String {
    let bars: Vec<Bar> = mode
        .ranking
        .iter()
        .map(|r| {
            let t = &run.types[r.type_index];
            Bar {
                label: t.name.clone(),
                provider: t.provider.clone(),
                value: r.overall.vs_fastest.value,
                ci: r.overall.vs_fastest.ci,
                dots: Vec::new(),
                value_text: format!("{:.3}", r.overall.vs_fastest.value),
            }
        })
        .collect();
    charts::bar_chart(
        &format!("ranking-{}", mode.mode),
        &format!(
            "Speed relative to the fastest instance type ({}, geometric mean)",
            mode.mode
        ),
        "relative speed (fastest = 1, higher is better; whiskers: 95% CI)",
        &bars,
        Some(1.0),
    )
}

/// Builds the run index's text.
pub fn run_index(
    run: &RunView,
    all_runs: &[String],
    failure_count: usize,
    has_prices: bool,
) -> RunIndex {
    let modes = run
        .modes
        .iter()
        .map(|mode| {
            let ranking = mode
                .ranking
                .iter()
                .map(|r| {
                    let t = &run.types[r.type_index];
                    let is_fastest = r.rank == 1;
                    let is_baseline = run.baseline.as_deref() == Some(t.name.as_str());
                    RankText {
                        rank: r.rank,
                        name: t.name.clone(),
                        slug: t.slug.clone(),
                        provider: t.provider.clone(),
                        vs_fastest: ratio_text(Some(&r.overall.vs_fastest), is_fastest, "fastest"),
                        vs_baseline: ratio_text(
                            r.overall.vs_baseline.as_ref(),
                            is_baseline,
                            "baseline",
                        ),
                        by_category: r
                            .by_category
                            .iter()
                            .map(|c| {
                                ratio_text(
                                    c.as_ref(),
                                    c.is_some_and(|c| c == Ratio::ONE),
                                    "fastest",
                                )
                            })
                            .collect(),
                        price: t
                            .usd_per_hour
                            .map_or_else(|| "—".to_owned(), |p| format!("{p:.4}")),
                        relative_cost: r
                            .relative_cost
                            .map_or_else(|| "—".to_owned(), |c| format!("{c:.2}")),
                        flags: t.flags(),
                    }
                })
                .collect();
            let summary_notes = mode
                .summaries
                .iter()
                .map(|s| {
                    format!(
                        "{} geometric mean over: {}.",
                        s.category,
                        s.benchmarks.join(", ")
                    )
                })
                .collect();
            let benchmarks = mode
                .benchmarks
                .iter()
                .map(|b| MatrixRow {
                    name: b.name.clone(),
                    slug: b.slug.clone(),
                    category: b.category.as_str().to_owned(),
                    cells: b
                        .cells
                        .iter()
                        .enumerate()
                        .map(|(i, c)| match c {
                            Some(c) => {
                                let r = ratio_text(Some(&c.vs_best), b.best == Some(i), "best");
                                MatrixCell {
                                    present: true,
                                    mean: fmt_ms(c.estimate.time_ms()),
                                    ci: ci_text(c),
                                    vs: r.text,
                                    class: r.class,
                                    sort: format!("{:.6}", c.estimate.time_ms()),
                                    title: r.title,
                                }
                            }
                            None => MatrixCell {
                                present: false,
                                mean: "failed / no data".to_owned(),
                                ci: String::new(),
                                vs: String::new(),
                                class: "missing".to_owned(),
                                sort: "1e99".to_owned(),
                                title: "no result".to_owned(),
                            },
                        })
                        .collect(),
                })
                .collect();
            ModeIndex {
                mode: mode.mode.clone(),
                overall_count: mode
                    .summaries
                    .iter()
                    .find(|s| s.category == "all")
                    .map_or(0, |s| s.benchmarks.len()),
                ranking,
                ranking_chart: if mode.ranking.is_empty() {
                    String::new()
                } else {
                    ranking_chart(run, mode)
                },
                summary_notes,
                benchmarks,
            }
        })
        .collect();
    let tasks: usize = run.types.iter().map(|t| t.runs.len()).sum();
    RunIndex {
        id: run.id.clone(),
        summary_line: format!(
            "{}Ruby {}; {} instance types, {} tasks.",
            run.date
                .as_ref()
                .map_or_else(String::new, |d| format!("Started {d}. ")),
            if run.ruby_versions.is_empty() {
                "unknown".to_owned()
            } else {
                run.ruby_versions.join(", ")
            },
            run.types.len(),
            tasks
        ),
        other_runs: all_runs.iter().filter(|r| **r != run.id).cloned().collect(),
        missing_baseline: run.missing_baseline.clone(),
        baseline: run.baseline.clone(),
        failure_count,
        has_local: run.types.iter().any(TypeView::is_local),
        has_prices,
        modes,
        types: run
            .types
            .iter()
            .map(|t| TypeLink {
                name: t.name.clone(),
                slug: t.slug.clone(),
                provider: t.provider.clone(),
                cpu: t.cpu_models.join(", "),
                flags: t.flags(),
            })
            .collect(),
    }
}

/// Renders the index of a run; `root` leads to the site root, `base` to the run's folder.
pub fn render_run_index(index: &RunIndex, root: &str, base: &str) -> askama::Result<String> {
    RunIndexTemplate {
        title: format!("Run {}", index.id),
        root,
        base,
        run: index,
    }
    .render()
}

/// A row of a benchmark page.
pub struct BenchRow {
    name: String,
    slug: String,
    provider: String,
    mean: String,
    sort: String,
    ci: String,
    runs: String,
    between: String,
    within: String,
    basis: String,
    vs_best: RatioText,
    vs_baseline: RatioText,
}

/// One mode of a benchmark page.
pub struct BenchMode {
    mode: String,
    present: bool,
    chart: String,
    rows: Vec<BenchRow>,
    failed: Vec<(String, String)>,
}

/// A benchmark's page.
#[derive(Template)]
#[template(path = "bench.html")]
pub struct BenchTemplate {
    title: String,
    root: &'static str,
    run_id: String,
    name: String,
    category: String,
    has_baseline: bool,
    modes: Vec<BenchMode>,
}

/// Renders the page of the benchmark `name`.
pub fn render_bench(run: &RunView, name: &str) -> askama::Result<String> {
    let mut category = String::new();
    let modes = run
        .modes
        .iter()
        .map(|mode| {
            let failed: Vec<(String, String)> = run
                .failed_benchmarks
                .iter()
                .filter(|f| f.benchmark == name && f.mode == mode.mode)
                .map(|f| (f.folder.clone(), f.error.clone()))
                .collect();
            let Some(b) = mode.benchmarks.iter().find(|b| b.name == name) else {
                return BenchMode {
                    mode: mode.mode.clone(),
                    present: false,
                    chart: String::new(),
                    rows: Vec::new(),
                    failed,
                };
            };
            category = b.category.as_str().to_owned();
            let mut order: Vec<usize> = (0..b.cells.len())
                .filter(|&i| b.cells[i].is_some())
                .collect();
            order.sort_by(|&x, &y| {
                let (cx, cy) = (
                    b.cells[x].as_ref().expect("filtered"),
                    b.cells[y].as_ref().expect("filtered"),
                );
                cx.estimate
                    .mean
                    .total_cmp(&cy.estimate.mean)
                    .then(run.types[x].name.cmp(&run.types[y].name))
            });
            let bars = order
                .iter()
                .map(|&i| {
                    let c = b.cells[i].as_ref().expect("filtered");
                    Bar {
                        label: run.types[i].name.clone(),
                        provider: run.types[i].provider.clone(),
                        value: c.estimate.time_ms(),
                        ci: c.estimate.time_ci_ms(),
                        dots: c.run_means.iter().map(|(_, m)| *m).collect(),
                        value_text: format!("{} ms", fmt_ms(c.estimate.time_ms())),
                    }
                })
                .collect::<Vec<_>>();
            let rows = order
                .iter()
                .map(|&i| {
                    let c = b.cells[i].as_ref().expect("filtered");
                    let t = &run.types[i];
                    BenchRow {
                        name: t.name.clone(),
                        slug: t.slug.clone(),
                        provider: t.provider.clone(),
                        mean: fmt_ms(c.estimate.time_ms()),
                        sort: format!("{:.6}", c.estimate.time_ms()),
                        ci: ci_text(c),
                        runs: c
                            .run_means
                            .iter()
                            .map(|(r, m)| format!("#{r}: {}", fmt_ms(*m)))
                            .collect::<Vec<_>>()
                            .join(", "),
                        between: c.between_run_pct.map_or_else(|| "—".to_owned(), fmt_pct),
                        within: fmt_pct(c.within_run_pct),
                        basis: c.basis.label().to_owned(),
                        vs_best: ratio_text(Some(&c.vs_best), b.best == Some(i), "best"),
                        vs_baseline: ratio_text(
                            c.vs_baseline.as_ref(),
                            run.baseline.as_deref() == Some(t.name.as_str()),
                            "baseline",
                        ),
                    }
                })
                .collect();
            BenchMode {
                mode: mode.mode.clone(),
                present: true,
                chart: charts::bar_chart(
                    &format!("bench-{}", mode.mode),
                    &format!("{name} ({}): mean time per iteration", mode.mode),
                    "milliseconds per iteration (lower is better; whiskers: 95% CI; dots: runs)",
                    &bars,
                    None,
                ),
                rows,
                failed,
            }
        })
        .collect();
    BenchTemplate {
        title: name.to_owned(),
        root: "../../../",
        run_id: run.id.clone(),
        name: name.to_owned(),
        category,
        has_baseline: run.baseline.is_some(),
        modes,
    }
    .render()
}

/// Provenance facts, joined.
pub struct Facts {
    regions: String,
    cpu_models: String,
    smt: String,
    kernels: String,
    ruby: String,
    commits: String,
    steal: String,
    price: String,
}

/// A run row of a type page.
pub struct TaskRow {
    run: u32,
    status: String,
    cpu_model: String,
    cpu: String,
    kernel: String,
    region: String,
    steal: String,
    median_stddev: String,
    ruby_description: String,
    ruby_bench_commit: String,
    flags: Vec<String>,
}

/// A summary row of a type page.
pub struct SummaryRow {
    category: String,
    count: usize,
    mean: String,
    vs_fastest: RatioText,
    vs_baseline: RatioText,
}

/// A benchmark row of a type page.
pub struct TypeBenchRow {
    name: String,
    slug: String,
    category: String,
    mean: String,
    sort: String,
    ci: String,
    between: String,
    within: String,
    within_class: String,
    vs_best: RatioText,
    vs_baseline: RatioText,
}

/// One mode of a type page.
pub struct TypeMode {
    mode: String,
    summaries: Vec<SummaryRow>,
    rows: Vec<TypeBenchRow>,
}

/// An instance type's page.
#[derive(Template)]
#[template(path = "instance_type.html")]
pub struct InstanceTypeTemplate<'a> {
    title: String,
    root: &'static str,
    run_id: String,
    t: &'a TypeView,
    flags: Vec<String>,
    facts: Facts,
    runs: Vec<TaskRow>,
    has_baseline: bool,
    modes: Vec<TypeMode>,
}

fn joined(values: &[String]) -> String {
    if values.is_empty() {
        "unknown (no meta.json)".to_owned()
    } else {
        values.join("; ")
    }
}

fn geo_is_fastest(g: &GeoCell) -> bool {
    g.vs_fastest == Ratio::ONE
}

/// Renders the page of the instance type at `index`.
pub fn render_type(run: &RunView, index: usize) -> askama::Result<String> {
    let t = &run.types[index];
    let is_baseline = run.baseline.as_deref() == Some(t.name.as_str());
    let smt = if t.runs.iter().all(|r| r.cpu.is_empty()) {
        "unknown".to_owned()
    } else if t.shared_core {
        "shared core: the pinned vCPU has an SMT sibling, another workload (or another slot) may run on the same physical core".to_owned()
    } else {
        "own core (no SMT sibling)".to_owned()
    };
    let facts = Facts {
        regions: joined(&t.regions),
        cpu_models: joined(&t.cpu_models),
        smt,
        kernels: joined(&t.kernels),
        ruby: joined(&t.ruby_descriptions),
        commits: joined(&t.ruby_bench_commits),
        steal: t
            .max_steal_pct
            .map_or_else(|| "unknown".to_owned(), fmt_pct),
        price: t.usd_per_hour.map_or_else(
            || "not in the prices file".to_owned(),
            |p| format!("{p:.4} USD/hour"),
        ),
    };
    let runs = t
        .runs
        .iter()
        .map(|r| TaskRow {
            run: r.run,
            status: r.status.clone(),
            cpu_model: r.cpu_model.clone(),
            cpu: r.cpu.clone(),
            kernel: r.kernel.clone(),
            region: r.region.clone(),
            steal: r.steal_pct.map_or_else(|| "—".to_owned(), fmt_pct),
            median_stddev: r.median_stddev_pct.map_or_else(|| "—".to_owned(), fmt_pct),
            ruby_description: r.ruby_description.clone(),
            ruby_bench_commit: r.ruby_bench_commit.clone(),
            flags: r.flags.clone(),
        })
        .collect();
    let modes = run
        .modes
        .iter()
        .map(|mode| TypeMode {
            mode: mode.mode.clone(),
            summaries: mode
                .summaries
                .iter()
                .filter_map(|s| {
                    let g = s.cells[index].as_ref()?;
                    Some(SummaryRow {
                        category: s.category.clone(),
                        count: s.benchmarks.len(),
                        mean: fmt_ms(g.estimate.time_ms()),
                        vs_fastest: ratio_text(Some(&g.vs_fastest), geo_is_fastest(g), "fastest"),
                        vs_baseline: ratio_text(g.vs_baseline.as_ref(), is_baseline, "baseline"),
                    })
                })
                .collect(),
            rows: mode
                .benchmarks
                .iter()
                .filter_map(|b| {
                    let c = b.cells[index].as_ref()?;
                    Some(TypeBenchRow {
                        name: b.name.clone(),
                        slug: b.slug.clone(),
                        category: b.category.as_str().to_owned(),
                        mean: fmt_ms(c.estimate.time_ms()),
                        sort: format!("{:.6}", c.estimate.time_ms()),
                        ci: ci_text(c),
                        between: c.between_run_pct.map_or_else(|| "—".to_owned(), fmt_pct),
                        within: fmt_pct(c.within_run_pct),
                        within_class: if c.within_run_pct > crate::analysis::NOISY_STDDEV_PCT {
                            "noisy".to_owned()
                        } else {
                            String::new()
                        },
                        vs_best: ratio_text(Some(&c.vs_best), b.best == Some(index), "best"),
                        vs_baseline: ratio_text(c.vs_baseline.as_ref(), is_baseline, "baseline"),
                    })
                })
                .collect(),
        })
        .collect();
    let mut flags = t.flags();
    if t.runs.len() == 1 {
        flags.push("one run only: intervals come from one machine's iterations and understate machine-to-machine variation".to_owned());
    }
    InstanceTypeTemplate {
        title: t.name.clone(),
        root: "../../../",
        run_id: run.id.clone(),
        t,
        flags,
        facts,
        runs,
        has_baseline: run.baseline.is_some(),
        modes,
    }
    .render()
}

/// The failures page of a run.
#[derive(Template)]
#[template(path = "failures.html")]
pub struct FailuresTemplate<'a> {
    title: String,
    root: &'static str,
    run_id: &'a str,
    tasks: &'a [FailedTask],
    benchmarks: &'a [FailedBenchmark],
    problems: &'a [Problem],
}

/// Renders the failures page; `problems` are those under this run's folder.
pub fn render_failures(run: &RunView, problems: &[Problem]) -> askama::Result<String> {
    FailuresTemplate {
        title: format!("Failures in run {}", run.id),
        root: "../../",
        run_id: &run.id,
        tasks: &run.failed_tasks,
        benchmarks: &run.failed_benchmarks,
        problems,
    }
    .render()
}

/// A run row of the history page.
pub struct HistoryRun {
    id: String,
    date: String,
    ruby: String,
    types: usize,
    tasks: usize,
    failed: usize,
}

/// A type row of the history page.
pub struct HistoryRow {
    name: String,
    values: Vec<String>,
}

/// One mode of the history page.
pub struct HistoryMode {
    mode: String,
    note: String,
    chart: String,
    rows: Vec<HistoryRow>,
}

/// The page of runs over time and Ruby versions.
#[derive(Template)]
#[template(path = "history.html")]
pub struct HistoryTemplate {
    title: String,
    root: &'static str,
    runs: Vec<HistoryRun>,
    labels: Vec<String>,
    modes: Vec<HistoryMode>,
}

/// Renders the history page: for each mode, each type's geometric mean over the benchmarks that
/// every run's summary covers, run by run.
pub fn render_history(runs: &[RunView]) -> askama::Result<String> {
    let labels: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{} ({}, Ruby {})",
                r.id,
                r.date.as_deref().unwrap_or("date unknown"),
                r.ruby_versions.join("/")
            )
        })
        .collect();
    let mut mode_names: Vec<String> = Vec::new();
    for r in runs {
        for m in &r.modes {
            if !mode_names.contains(&m.mode) {
                mode_names.push(m.mode.clone());
            }
        }
    }
    let modes = mode_names
        .iter()
        .map(|mode| {
            // Benchmarks in the overall summary of every run that has this mode.
            let mut common: Option<Vec<String>> = None;
            for r in runs {
                if let Some(all) = r.modes.iter().find(|m| &m.mode == mode).and_then(|m| m.summaries.iter().find(|s| s.category == "all")) {
                    common = Some(match common {
                        None => all.benchmarks.clone(),
                        Some(c) => c.into_iter().filter(|b| all.benchmarks.contains(b)).collect(),
                    });
                }
            }
            let common = common.unwrap_or_default();
            let mut providers = std::collections::BTreeMap::new();
            let mut table: std::collections::BTreeMap<String, Vec<Option<f64>>> = std::collections::BTreeMap::new();
            for (k, r) in runs.iter().enumerate() {
                let Some(m) = r.modes.iter().find(|m| &m.mode == mode) else { continue };
                for (i, t) in r.types.iter().enumerate() {
                    let logs: Option<Vec<f64>> = common
                        .iter()
                        .map(|b| m.benchmarks.iter().find(|x| &x.name == b).and_then(|x| x.cells[i].as_ref()).map(|c| c.estimate.mean))
                        .collect();
                    let value = logs.filter(|l| !l.is_empty()).map(|l| (l.iter().sum::<f64>() / l.len() as f64).exp());
                    providers.insert(t.name.clone(), t.provider.clone());
                    table.entry(t.name.clone()).or_insert_with(|| vec![None; runs.len()])[k] = value;
                }
            }
            let lines: Vec<Line> = table
                .iter()
                .map(|(name, values)| Line {
                    label: name.clone(),
                    provider: providers[name].clone(),
                    values: values.clone(),
                })
                .collect();
            let short_labels: Vec<String> = runs.iter().map(|r| format!("{} · Ruby {}", r.date.as_deref().unwrap_or(&r.id), r.ruby_versions.join("/"))).collect();
            HistoryMode {
                mode: mode.clone(),
                note: if common.is_empty() {
                    "No benchmark is common to every run in this mode.".to_owned()
                } else {
                    format!("Geometric mean of the time per iteration over the benchmarks every run covers ({}), in ms; lower is better.", common.join(", "))
                },
                chart: charts::line_chart(
                    &format!("history-{mode}"),
                    &format!("Geometric-mean time per run ({mode})"),
                    &short_labels,
                    "geometric mean, ms per iteration (lower is better)",
                    &lines,
                ),
                rows: table
                    .into_iter()
                    .map(|(name, values)| HistoryRow {
                        name,
                        values: values.into_iter().map(|v| v.map_or_else(|| "—".to_owned(), fmt_ms)).collect(),
                    })
                    .collect(),
            }
        })
        .collect();
    HistoryTemplate {
        title: "Runs over time".to_owned(),
        root: "",
        runs: runs
            .iter()
            .map(|r| HistoryRun {
                id: r.id.clone(),
                date: r.date.clone().unwrap_or_else(|| "unknown".to_owned()),
                ruby: r.ruby_versions.join(", "),
                types: r.types.len(),
                tasks: r.types.iter().map(|t| t.runs.len()).sum(),
                failed: r.failed_tasks.len(),
            })
            .collect(),
        labels,
        modes,
    }
    .render()
}
